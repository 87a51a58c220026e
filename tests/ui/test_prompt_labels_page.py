"""The prompt page shows which versions carry which labels."""

from __future__ import annotations

import re

from ui.harness import LiveServer, account


def test_the_prompt_page_shows_each_versions_labels(live_server: LiveServer) -> None:
    with live_server.api() as api:
        user = account(api, "Lena", "lena@example.com")
        auth = {"Authorization": f"Bearer {user['token']}"}
        prompt = api.post(
            "/prompts",
            json={"title": "Ticket summary", "content": "v1 {ticket}", "model": "gpt-4o"},
            headers=auth,
        ).json()
        api.patch(f"/prompts/{prompt['_id']}", json={"content": "v2 {ticket}"}, headers=auth)
        for label, version in (("production", 1), ("staging", 2)):
            put = api.put(
                f"/prompts/{prompt['_id']}/labels/{label}", json={"version": version}, headers=auth
            )
            assert put.status_code == 200, put.text

        form = {"email": user["email"], "password": user["password"], "next": "/"}
        assert api.post("/ui/login", data=form, headers={"Origin": live_server.url}).is_redirect
        page = api.get(f"/ui/prompts/{prompt['_id']}")
        assert page.status_code == 200, page.text
        rows = re.findall(
            r'<tr class="clickable" data-href="\?version=(\d)">(.*?)</tr>', page.text, re.S
        )
        badges = {int(n): re.findall(r'<span class="badge">([^<]+)</span>', row) for n, row in rows}
        assert badges == {2: ["current", "staging"], 1: ["production"]}
