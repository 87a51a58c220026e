"""The source settings page turns the capture of LLM content off and on (the API's
``captureLlmContent``); a settings form from before the checkbox existed leaves it alone."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from fixtures.sources import create_source
from fixtures.users import AUser, sign_up
from ui.harness import LiveServer, sign_in


def test_the_settings_page_turns_llm_content_capture_off_and_on(
    page: Page, live_server: LiveServer, api: httpx.Client
) -> None:
    user = sign_up(api, "Jane", "jane@example.com")
    auth = user.headers
    source = create_source(api, user, "Shop", trafficDomain="https://shop.io")

    def stored() -> Any:
        return api.get(f"/traffic-source/{source.id}", headers=auth).json()["captureLlmContent"]

    sign_in(page, user)
    page.goto(f"/ui/sources/{source.id}/settings")
    box = page.get_by_label("Keep the content of LLM calls")
    expect(box).to_be_checked()
    box.uncheck()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("settings-saved")).to_be_visible()
    expect(page.get_by_label("Keep the content of LLM calls")).not_to_be_checked()
    assert stored() is False

    # A failed save shows the box as it was sent, not as stored.
    page.get_by_label("Keep the content of LLM calls").check()
    page.get_by_label("Retention (days)").fill("soon")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".field-error")).to_contain_text("whole number of days")
    expect(page.get_by_label("Keep the content of LLM calls")).to_be_checked()
    assert stored() is False

    page.get_by_label("Retention (days)").fill("")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("settings-saved")).to_be_visible()
    assert stored() is True


def test_an_older_settings_form_keeps_the_setting(
    client: TestClient, user: AUser, owned: dict[str, Any]
) -> None:
    sid = owned["id"]
    off = client.put(
        f"/traffic-source/{sid}", json={"captureLlmContent": False}, headers=user.headers
    )
    assert off.status_code == 200, off.text
    form = {"csrf": owned["csrf"], "name": "Renamed", "retentionDays": ""}
    saved = client.post(f"{owned['base']}/settings", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    got = client.get(f"/traffic-source/{sid}", headers=user.headers).json()
    assert (got["name"], got["captureLlmContent"]) == ("Renamed", False)
    # The current form, box unchecked (nothing sent for it), keeps it off; checked turns it on.
    shown = {**form, "llmContentShown": "1"}
    client.post(f"{owned['base']}/settings", data=shown, follow_redirects=False)
    assert (
        client.get(f"/traffic-source/{sid}", headers=user.headers).json()["captureLlmContent"]
        is False
    )
    client.post(
        f"{owned['base']}/settings",
        data={**shown, "captureLlmContent": "on"},
        follow_redirects=False,
    )
    assert (
        client.get(f"/traffic-source/{sid}", headers=user.headers).json()["captureLlmContent"]
        is True
    )
