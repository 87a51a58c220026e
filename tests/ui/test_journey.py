"""The issue's definition of done, in a real browser: a new user signs up, creates a source,
sends traffic with the shown key, then filters it, opens a record and sees the charts; and the
prompt library shows prompts with their logs side by side per model."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from fixtures.sources import create_source
from fixtures.users import sign_up
from ui.harness import DOMAIN, TRAFFIC, LiveServer, exchange, ingest, shot, sign_in


def test_new_user_sends_traffic_and_explores_it(
    page: Page, live_server: LiveServer, screenshot_dir: Path
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto("/ui/signup")
    shot(page, screenshot_dir, "01-sign-up", full_page=False)
    page.get_by_label("Name").fill("Jane Doe")
    page.get_by_label("Email").fill("jane@example.com")
    page.get_by_label("Password").fill("password123")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("No traffic sources yet.")).to_be_visible()

    # A bad domain is refused with the field named, and nothing is created.
    page.get_by_label("Name").fill("Payments API")
    page.get_by_label("Domain").fill("not a url")
    page.get_by_role("button", name="Create source").click()
    expect(page.locator(".field-error")).to_be_visible()
    expect(page.get_by_text("No traffic sources yet.")).to_be_visible()

    page.get_by_label("Domain").fill(DOMAIN)
    page.get_by_role("button", name="Create source").click()
    expect(page.get_by_role("heading", name="Payments API")).to_be_visible()
    source_id = re.search(r"/ui/sources/([0-9a-f-]{36})/keys", page.url).group(1)  # type: ignore[union-attr]

    page.get_by_label("Key name").fill("production")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key-value").inner_text().strip()
    assert key.startswith("lhk_")
    # The snippets carry this server's URL, the new key and the source id, ready to paste.
    asgi = page.locator("#snippet-asgi").inner_text()
    assert key in asgi and source_id in asgi and live_server.url in asgi
    shot(page, screenshot_dir, "03-ingest-keys")

    with live_server.api() as api:
        ingest(api, key, TRAFFIC)
        # The snippet's plain-HTTP example works as shown, too.
        curl_example = page.locator("#snippet-curl").inner_text()
        assert "/ingest-log" in curl_example

        page.get_by_role("link", name="Explorer").click()
        counter = page.get_by_test_id("record-count")
        expect(counter).to_have_text("5 records")
        # Dates are shown in the browser's time zone, with the UTC instant kept in datetime.
        first_time = page.locator("tbody time").first
        assert re.match(r"\d{4}-\d\d-\d\dT", first_time.get_attribute("datetime") or "")
        assert "T" not in first_time.inner_text()

        # Live: traffic sent while the page is open appears without a reload.
        ingest(api, key, [exchange("/health", "GET", 200, 1.5)])
        expect(counter).to_have_text("6 records", timeout=20_000)

    # Filters: status class, then method, then text; the address bar keeps them.
    page.get_by_label("Status").fill("5xx")
    page.get_by_label("Status").press("Enter")
    expect(counter).to_have_text("2 records")
    expect(page).to_have_url(re.compile(r"status=5xx"))
    page.get_by_label("Status").fill("")
    page.get_by_label("Method").select_option("POST")
    expect(counter).to_have_text("1 record")
    page.get_by_label("Method").select_option("")
    page.get_by_label("Text").fill("users")
    expect(counter).to_have_text("4 records")
    page.get_by_label("Level").select_option("WARNING")
    expect(counter).to_have_text("1 record")
    page.get_by_label("Level").select_option("")
    page.get_by_label("Text").fill("")
    page.get_by_label("Time range").select_option("15m")
    expect(counter).to_have_text("6 records")
    # A reload of the pushed URL shows the same filtered view.
    page.reload()
    expect(page.get_by_label("Time range")).to_have_value("15m")
    shot(page, screenshot_dir, "04-traffic-explorer")

    page.locator("tr", has_text="/v1/orders").get_by_role("link").click()
    expect(page.get_by_test_id("record-status")).to_have_text("201")
    expect(page.get_by_test_id("record-route")).to_have_text("/v1/orders")
    request_panel = page.get_by_test_id("request-panel")
    # The JSON body is a collapsible tree; the secret header was masked at ingest.
    expect(request_panel.locator(".json-tree")).to_contain_text('"customer": "Jane"')
    expect(request_panel).not_to_contain_text("s3cret")
    request_panel.locator(".json-tree summary").first.click()
    expect(request_panel.get_by_text('"customer": "Jane"')).to_be_hidden()
    curl = page.locator("#curl-command").inner_text()
    assert curl.startswith(f"curl -X POST {DOMAIN}/v1/orders ")
    assert "--data-raw" in curl and "Jane" in curl
    shot(page, screenshot_dir, "05-record")

    page.get_by_role("link", name="Charts").click()
    expect(page.get_by_test_id("total-requests")).to_have_text("6")
    expect(page.locator("#chart-rpm[data-ready] canvas")).to_be_visible()
    expect(page.locator("#chart-latency[data-ready] canvas")).to_be_visible()
    slowest = page.locator("section", has_text="Slowest routes").locator("tbody tr").first
    expect(slowest).to_contain_text("/v1/users/42")
    failing = page.locator("section", has_text="Most failing routes").locator("tbody tr").first
    expect(failing).to_contain_text("/v1/users/42")
    expect(failing).to_contain_text("2 / 2")
    shot(page, screenshot_dir, "06-charts")

    page.get_by_role("link", name="Exceptions").click()
    expect(page.get_by_test_id("exception-count")).to_contain_text("1 exception")
    # Grouped by route template, with the count of occurrences.
    expect(page.locator("tbody tr").first).to_contain_text("GET /v1/users/:id")
    expect(page.locator("tbody tr").first.locator("td.num")).to_have_text("2")
    shot(page, screenshot_dir, "07-exceptions")

    page.get_by_role("link", name="Traffic", exact=True).click()
    card = page.get_by_test_id("source-card")
    expect(card).to_contain_text("Payments API")
    expect(card).to_contain_text("50.0%")  # 404 + 2 x 500 of 6
    shot(page, screenshot_dir, "02-sources")

    # On a phone-sized screen the explorer still fits the width.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/ui/sources/{source_id}")
    expect(page.get_by_test_id("record-count")).to_have_text("6 records")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, screenshot_dir, "09-phone-explorer", full_page=False)
    assert errors == []


def test_prompt_library_search_and_logs_per_model(
    page: Page, live_server: LiveServer, screenshot_dir: Path
) -> None:
    with live_server.api() as api:
        user = sign_up(api, "Pat", "pat@example.com")
        auth = user.headers
        summary = api.post(
            "/prompts",
            headers=auth,
            json={
                "title": "Summarize a support ticket",
                "content": "Summarize the ticket in two sentences: {ticket}",
                "model": "gpt-4o",
                "tags": ["support", "summary"],
            },
        ).json()
        api.post(
            "/prompts",
            headers=auth,
            json={"title": "Translate", "content": "Translate to French", "model": "x", "tags": []},
        )
        patched = api.patch(
            f"/prompts/{summary['_id']}",
            headers=auth,
            json={"content": "Summarize the ticket in one sentence: {ticket}"},
        )
        assert patched.status_code == 200, patched.text
        for model, score, output in (
            ("gpt-4o", 8, "Customer cannot log in after the update."),
            ("gpt-4o", 9, "Login broken since update; wants a refund."),
            ("claude-3-5-sonnet", 7, "User reports a login failure after updating."),
        ):
            answer = api.post(
                "/logs",
                headers=auth,
                json={
                    "promptId": summary["_id"],
                    "output": output,
                    "modelUsed": model,
                    "score": score,
                    "notes": "ok",
                },
            )
            assert answer.status_code == 201, answer.text

    sign_in(page, user)
    page.get_by_role("link", name="Prompts").click()
    expect(page.get_by_test_id("prompt-count")).to_have_text("2 prompts")
    page.get_by_label("Search").fill("ticket support")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("prompt-count")).to_contain_text("1 prompt matching")
    page.get_by_role("link", name="Summarize a support ticket").click()

    expect(page.get_by_test_id("prompt-content")).to_have_text(
        "Summarize the ticket in one sentence: {ticket}"
    )
    columns = page.get_by_test_id("model-column")
    expect(columns).to_have_count(2)
    expect(columns.first).to_contain_text("gpt-4o")
    expect(columns.first).to_contain_text("avg 8.5")
    expect(columns.nth(1)).to_contain_text("claude-3-5-sonnet")
    shot(page, screenshot_dir, "08-prompt")
    # The previous version stays readable.
    page.get_by_role("link", name="v1", exact=True).click()
    expect(page.get_by_test_id("prompt-content")).to_have_text(
        "Summarize the ticket in two sentences: {ticket}"
    )


def test_other_users_sources_and_records_stay_private(page: Page, live_server: LiveServer) -> None:
    with live_server.api() as api:
        owner = sign_up(api, "Own", "own@example.com")
        auth = owner.headers
        source = create_source(api, owner, "Secret", trafficDomain=DOMAIN)
        record = api.post(f"/http-traffic-record/{source.id}", headers=auth, json=TRAFFIC[0])
        assert record.status_code == 201, record.text
        record_id = record.json()["id"]

    page.goto("/ui/signup")
    page.get_by_label("Name").fill("Mallory")
    page.get_by_label("Email").fill("mallory@example.com")
    page.get_by_label("Password").fill("password123")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("No traffic sources yet.")).to_be_visible()
    for path in (
        f"/ui/sources/{source.id}",
        f"/ui/sources/{source.id}/records/{record_id}",
        f"/ui/sources/{source.id}/charts",
        f"/ui/sources/{source.id}/keys",
    ):
        answer = page.goto(path)
        assert answer is not None and answer.status == 403, path
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        expect(page.locator("body")).not_to_contain_text("Secret")
    answer = page.goto("/ui/sources/not-a-uuid")
    assert answer is not None and answer.status == 400
    answer = page.goto(f"/ui/sources/{source.id}/charts?range=forever")
    assert answer is not None and answer.status == 400
