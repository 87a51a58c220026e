"""What UI tests share besides fixtures (importable as ``ui.harness``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from fixtures.users import AUser
from logharbor.settings import Settings


@dataclass
class LiveServer:
    url: str
    settings: Settings

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def sign_in(page: Page, user: AUser) -> None:
    page.goto("/ui/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Traffic sources")).to_be_visible()


def page_errors(html: str) -> str:
    """What the page says is wrong: field errors under inputs, or the error page's list."""
    found = [
        f"{name}: {message}"
        for label in re.findall(r"<label>(.*?)</label>", html, re.DOTALL)
        for name, message in re.findall(
            r'name="(\w+)".*class="field-error">([^<]*)<', label, re.DOTALL
        )
    ]
    found += re.findall(r"<li><code>([^<]*)</code>: ([^<]*)</li>", html)
    found += re.findall(r'class="error-message">([^<]*)<', html)
    return repr(found)


def csrf_of(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page.text)
    assert found
    return found.group(1)
