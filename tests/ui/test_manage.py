"""Managing a source in a real browser: its settings and shares, its exceptions' status and its
webhooks; and what a read-only viewer of a shared source can (not) do."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from fixtures.sources import create_source
from fixtures.users import sign_up
from fixtures.webhooks import Receiver
from ui.harness import DOMAIN, TRAFFIC, LiveServer, ingest, shot, sign_in

PHONE = {"width": 390, "height": 844}


def fits_phone(page: Page) -> None:
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url
    page.set_viewport_size({"width": 1280, "height": 860})


def test_owner_manages_a_source_and_a_viewer_only_reads_it(
    page: Page,
    browser: Browser,
    live_server: LiveServer,
    receiver: Receiver,
    screenshot_dir: Path,
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    with live_server.api() as api:
        owner = sign_up(api, "Olga Owner", "olga@example.com")
        viewer = sign_up(api, "Vic Viewer", "vic.o'neil@example.com")  # quotes occur in emails
        auth = owner.headers
        source = create_source(api, owner, "Payments API", trafficDomain=DOMAIN)
        key = api.post(
            f"/traffic-source/{source.id}/ingest-keys", headers=auth, json={"name": "ci"}
        ).json()["key"]
        ingest(api, key, TRAFFIC)
    base = f"/ui/sources/{source.id}"

    sign_in(page, owner)

    # --- settings: bad input names the field and changes nothing; good input is saved.
    page.get_by_test_id("source-card").click()
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Retention (days)").fill("soon")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".field-error")).to_contain_text("whole number of days")
    page.get_by_label("Retention (days)").fill("0")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".field-error")).to_be_visible()
    page.get_by_label("Name").fill("   ")
    page.get_by_label("Retention (days)").fill("30")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".field-error")).to_be_visible()
    with live_server.api() as api:
        stored = api.get(f"/traffic-source/{source.id}", headers=auth).json()
    assert stored["name"] == "Payments API" and stored["retentionDays"] is None
    page.get_by_label("Name").fill("Payments")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("settings-saved")).to_be_visible()
    expect(page.get_by_role("heading", name="Payments", exact=True)).to_be_visible()
    expect(page.get_by_label("Retention (days)")).to_have_value("30")

    # --- shares: unknown and own emails are refused on the field; the viewer is added.
    email = page.get_by_label("Share with (email)")
    share = page.get_by_role("button", name="Share read-only")
    email.fill("nobody@example.com")
    share.click()
    expect(page.locator(".field-error")).to_contain_text("No user with this email")
    email.fill(owner.email)
    share.click()
    expect(page.locator(".field-error")).to_contain_text("already own")
    email.fill(viewer.email)
    share.click()
    expect(page.get_by_test_id("share")).to_contain_text(viewer.email)
    email.fill(viewer.email)
    share.click()
    expect(page.locator(".field-error")).to_contain_text("Already shared")
    shot(page, screenshot_dir, "10-source-settings")
    fits_phone(page)

    # --- exceptions: the owner resolves and reopens.
    page.get_by_role("link", name="Exceptions").click()
    expect(page.get_by_test_id("exception-count")).to_contain_text("1 exception")
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_test_id("exception-count")).to_contain_text("0 exceptions")
    page.get_by_label("Show").select_option("resolved")
    expect(page.get_by_test_id("exception-status")).to_have_text("resolved")
    page.get_by_role("button", name="Reopen").click()
    expect(page).to_have_url(re.compile(r"status=resolved"))
    expect(page.get_by_test_id("exception-count")).to_contain_text("0 exceptions")
    page.get_by_label("Show").select_option("open")
    expect(page.get_by_test_id("exception-status")).to_have_text("open")
    fits_phone(page)

    # --- webhooks: the secret shows once; edit with bad then good input; test; delete.
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL", exact=True).fill(receiver.url)
    page.get_by_role("button", name="Add webhook").click()
    secret = page.locator("#webhook-secret").inner_text().strip()
    assert secret.startswith("whsec_")
    page.goto(f"{base}/webhooks")
    expect(page.get_by_test_id("new-webhook")).to_have_count(0)
    assert secret not in page.content()

    hook = page.get_by_test_id("webhook")
    hook.get_by_text("Edit").click()
    hook.get_by_label("Status from").fill("abc")
    hook.get_by_role("button", name="Save webhook").click()
    expect(hook.locator(".field-error")).to_contain_text("statusMin")
    hook.get_by_label("Status from").fill("500")
    hook.get_by_label("Status to").fill("450")
    hook.get_by_role("button", name="Save webhook").click()
    expect(hook.locator(".field-error")).to_contain_text("greater than statusMax")
    hook.locator("input[name=value]").fill("ftp://example.com/x")
    hook.get_by_label("Status to").fill("599")
    hook.get_by_role("button", name="Save webhook").click()
    expect(hook.locator(".field-error")).to_contain_text("https")
    expect(hook.get_by_label("Status from")).to_have_value("500")  # the typed values stay
    hook.locator("input[name=value]").fill(receiver.url)
    hook.get_by_label("Level").select_option("WARNING")
    hook.get_by_label("Only paths starting with").fill("/v1/")
    hook.get_by_label("Cooldown (seconds)").fill("120")
    hook.get_by_role("button", name="Save webhook").click()
    expect(hook).to_contain_text("WARNING")
    expect(hook).to_contain_text("paths /v1/*")
    expect(hook).to_contain_text("status 500\u2013599")
    expect(hook).to_contain_text("cooldown 120 s")

    hook.get_by_role("button", name="Send test").click()
    expect(page.get_by_test_id("test-result")).to_contain_text("delivered")
    expect(page.get_by_test_id("test-result")).to_contain_text("HTTP 200")
    assert len(receiver.wait_for(1)) == 1
    receiver.statuses.append(500)
    hook.get_by_role("button", name="Send test").click()
    expect(page.get_by_test_id("test-result")).to_contain_text("not delivered")

    page.once("dialog", lambda dialog: dialog.accept())
    hook.get_by_role("button", name="Rotate secret").click()
    rotated = page.locator("#webhook-secret").inner_text().strip()
    assert rotated.startswith("whsec_") and rotated != secret
    shot(page, screenshot_dir, "11-webhooks")
    hook.get_by_text("Edit").click()
    page.set_viewport_size(PHONE)
    shot(page, screenshot_dir, "12-phone-webhook-edit")
    fits_phone(page)

    # --- the viewer: shared source marked on the home page, read-only everywhere.
    viewer_context = browser.new_context(base_url=live_server.url)
    try:
        other = viewer_context.new_page()
        other.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(other, viewer)
        card = other.get_by_test_id("source-card")
        expect(card).to_contain_text("Payments")
        expect(card.get_by_test_id("shared-badge")).to_have_text("shared · read-only")
        card.click()
        tabs = other.locator("nav.tabs")
        expect(tabs.get_by_role("link", name="Exceptions")).to_be_visible()
        for name in ("Settings", "Webhooks", "Ingest keys"):
            expect(tabs.get_by_role("link", name=name)).to_have_count(0)
        other.goto(f"{base}/exceptions")
        expect(other.get_by_test_id("exception-status")).to_have_text("open")
        expect(other.get_by_role("button", name="Resolve")).to_have_count(0)
        with live_server.api() as api:
            exception_id = api.get(f"/exceptions/{source.id}", headers=auth).json()["data"][0]["id"]
        csrf = other.locator("meta[name=csrf-token]").get_attribute("content") or ""
        for path in (
            f"{base}/exceptions/{exception_id}/resolve",
            f"{base}/settings",
            f"{base}/shares",
        ):
            answer = other.request.post(path, form={"csrf": csrf, "name": "x", "email": "a@b.c"})
            assert answer.status == 403, path
        assert other.goto(f"{base}/settings").status == 403  # type: ignore[union-attr]
        # Without the CSRF token even the owner's session is refused.
        answer = page.request.post(f"{base}/exceptions/{exception_id}/resolve", form={})
        assert answer.status == 403

        # --- the owner revokes the share; the viewer loses the source.
        page.goto(f"{base}/settings")
        asked: list[str] = []

        def answer_dialog(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept()

        page.once("dialog", answer_dialog)
        page.get_by_test_id("share").get_by_role("button", name="Revoke").click()
        expect(page.get_by_text("Not shared with anyone.")).to_be_visible()
        # The question names the viewer; the email reaches it as text (data-confirm), never
        # spliced into JavaScript.
        assert asked == [f"Stop sharing with {viewer.email}?"]
        other.goto("/")
        expect(other.get_by_text("No traffic sources yet.")).to_be_visible()
    finally:
        viewer_context.close()

    # --- webhook deleted; then the source, after a typed confirmation.
    page.goto(f"{base}/webhooks")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_text("No webhooks yet.")).to_be_visible()

    page.goto(f"{base}/settings")
    page.get_by_role("link", name="Delete source…").click()
    page.get_by_label("Type the source's name to confirm").fill("Payment")
    page.get_by_role("button", name="Delete forever").click()
    expect(page.locator("#delete .field-error")).to_contain_text("Type the source's name")
    fits_phone(page)
    page.get_by_label("Type the source's name to confirm").fill("Payments")
    page.get_by_role("button", name="Delete forever").click()
    expect(page.get_by_text("No traffic sources yet.")).to_be_visible()
    with live_server.api() as api:
        assert api.get(f"/traffic-source/{source.id}", headers=auth).status_code == 404
    assert errors == []
