"""The prompt page shows which versions carry which labels, and moves them (in a browser)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from fixtures.users import sign_up
from ui.harness import LiveServer, sign_in


def _badges(html: str) -> dict[int, list[str]]:
    rows = re.findall(r'<tr class="clickable" data-href="\?version=(\d)">(.*?)</tr>', html, re.S)
    return {int(n): re.findall(r'<span class="badge">([^<]+)</span>', row) for n, row in rows}


def test_the_prompt_page_shows_and_moves_labels(live_server: LiveServer, page: Page) -> None:
    with live_server.api() as api:
        user = sign_up(api, "Lena", "lena@example.com")
        auth = user.headers
        prompt = api.post(
            "/prompts",
            json={"title": "Ticket summary", "content": "v1 {ticket}", "model": "gpt-4o"},
            headers=auth,
        ).json()
        api.patch(f"/prompts/{prompt['_id']}", json={"content": "v2 {ticket}"}, headers=auth)
        put = api.put(f"/prompts/{prompt['_id']}/labels/staging", json={"version": 2}, headers=auth)
        assert put.status_code == 200, put.text

        def labels() -> dict[int, list[str]]:
            versions = api.get(f"/prompts/{prompt['_id']}/versions", headers=auth).json()
            return {v["version"]: v["labels"] for v in versions}

        sign_in(page, user)
        page.goto(f"/ui/prompts/{prompt['_id']}?version=1")
        assert _badges(page.content()) == {2: ["current", "staging"], 1: []}

        page.get_by_label("Label this version").fill("production")
        page.get_by_role("button", name="Set label").click()
        expect(page.get_by_test_id("labels").get_by_text("production")).to_be_visible()
        assert labels() == {1: ["production"], 2: ["staging"]}
        assert _badges(page.content()) == {2: ["current", "staging"], 1: ["production"]}

        # A label the browser's own check would refuse still gets a 400 page from the server.
        page.get_by_label("Label this version").evaluate("el => el.removeAttribute('pattern')")
        page.get_by_label("Label this version").fill("Not A Label")
        page.get_by_role("button", name="Set label").click()
        expect(page.locator("p.error-message")).to_contain_text("A label is 1 to 50 characters")
        assert labels() == {1: ["production"], 2: ["staging"]}

        page.goto(f"/ui/prompts/{prompt['_id']}?version=1")
        page.get_by_role("button", name="Remove label production").click()
        expect(page.get_by_test_id("labels").get_by_text("production")).to_have_count(0)
        assert labels() == {1: [], 2: ["staging"]}
