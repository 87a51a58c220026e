"""What UI tests share besides fixtures (importable as ``ui.harness``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# Traffic the browser tests send, as a collector would.
DOMAIN = "https://api.payments.example"


def exchange(path: str, method: str, status: int, elapsed: float, **extra: Any) -> dict[str, Any]:
    return {
        "domainUrl": DOMAIN,
        "pathnameUrl": path,
        "method": method,
        "status": status,
        "elapsedTime": elapsed,
        "requestHeaders": {"content-type": "application/json", "authorization": "Bearer s3cret"},
        "responseHeaders": {"content-type": "application/json"},
        **extra,
    }


TRAFFIC = [
    exchange("/v1/users", "GET", 200, 12.5, queryParams={"page": "2"}),
    exchange("/v1/users", "GET", 404, 8.0, responseBody={"error": "no such page"}),
    exchange(
        "/v1/orders",
        "post",
        201,
        48.25,
        requestBody={"customer": "Jane", "items": [{"sku": "A1", "qty": 2}]},
        responseBody={"id": 7, "status": "created"},
        routeTemplate="/v1/orders",
    ),
    exchange("/v1/users/42", "GET", 500, 310.0, responseBody={"message": "db timeout"}),
    exchange("/v1/users/42", "GET", 500, 295.0, responseBody={"message": "db timeout"}),
]


def ingest(api: httpx.Client, key: str, records: list[dict[str, Any]]) -> None:
    for record in records:
        answer = api.post("/ingest-log", json=record, headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 201, answer.text


def shot(page: Page, folder: Path, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)
