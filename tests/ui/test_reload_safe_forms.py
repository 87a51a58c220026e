"""Forms that create something answer with a redirect (Post/Redirect/Get): reloading the page
that follows creates nothing more, and what is shown once (a webhook's secret, an ingest key)
crosses the redirect as a one-time flash that any worker can read and none keeps in clear.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from fixtures.sources import create_source
from fixtures.users import AUser, sign_up
from fixtures.webhooks import Receiver
from logharbor.app import create_app
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database
from logharbor.db.tables import ui_flashes, webhooks
from logharbor.settings import Settings
from logharbor.ui import flash
from logharbor.ui.session import COOKIE
from ui.harness import DOMAIN, LiveServer, sign_in


def stored_secrets(db: Database) -> list[str]:
    with db.read() as conn:
        return list(conn.execute(select(webhooks.c.secret).order_by(webhooks.c.id)).scalars())


def flash_rows(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [dict(row) for row in conn.execute(select(ui_flashes)).mappings()]


# --- in a real browser -------------------------------------------------------------------------


def test_reloading_after_webhook_forms_repeats_nothing(
    page: Page, live_server: LiveServer, receiver: Receiver, bare_db: Database
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    with live_server.api() as api:
        owner = sign_up(api, "Olga Owner", "olga@example.com")
        source = create_source(api, owner, "Payments API", trafficDomain=DOMAIN)
    sign_in(page, owner)
    page.goto(f"/ui/sources/{source.id}/webhooks")

    page.get_by_label("URL", exact=True).fill(receiver.url)
    page.get_by_role("button", name="Add webhook").click()
    secret = page.locator("#webhook-secret").inner_text().strip()
    assert stored_secrets(bare_db) == [secret]
    page.reload()
    expect(page.get_by_test_id("webhook")).to_have_count(1)
    expect(page.get_by_test_id("new-webhook")).to_have_count(0)  # shown once
    assert stored_secrets(bare_db) == [secret]

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Rotate secret").click()
    rotated = page.locator("#webhook-secret").inner_text().strip()
    assert rotated != secret and stored_secrets(bare_db) == [rotated]
    page.reload()
    expect(page.get_by_test_id("new-webhook")).to_have_count(0)
    assert stored_secrets(bare_db) == [rotated]  # the secret just shown still works

    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_test_id("test-result")).to_contain_text("delivered")
    page.reload()
    expect(page.get_by_test_id("test-result")).to_have_count(0)
    assert len(receiver.wait_for(1)) == 1
    assert len(receiver.requests) == 1
    assert flash_rows(bare_db) == []
    assert errors == []


# --- the flash over plain HTTP -----------------------------------------------------------------


def _add_webhook(client: TestClient, owned: dict[str, Any]) -> Any:
    return client.post(
        f"{owned['base']}/webhooks",
        data={"csrf": owned["csrf"], "value": "http://127.0.0.1:9/hook", "level": "FATAL"},
        follow_redirects=False,
    )


def test_adding_a_webhook_redirects_and_its_secret_shows_once(
    client: TestClient, owned: dict[str, Any], db: Database
) -> None:
    answer = _add_webhook(client, owned)
    assert answer.status_code == 303, answer.text
    page_path = f"{owned['base']}/webhooks"
    assert answer.headers["location"] == page_path
    cookie = answer.headers["set-cookie"]
    assert f"Path={page_path}" in cookie and "HttpOnly" in cookie and "Max-Age=" in cookie
    (secret,) = stored_secrets(db)

    shown = client.get(page_path)
    assert shown.status_code == 200
    assert secret in shown.text and 'data-testid="new-webhook"' in shown.text
    assert flash.COOKIE not in client.cookies  # dropped by the page that showed it
    assert flash_rows(db) == []
    again = client.get(page_path)
    assert secret not in again.text and 'data-testid="new-webhook"' not in again.text


def test_the_flash_crosses_workers_and_neither_half_holds_the_secret(
    client: TestClient, owned: dict[str, Any], settings: Settings, db: Database
) -> None:
    answer = _add_webhook(client, owned)
    assert answer.status_code == 303, answer.text
    sealed = client.cookies[flash.COOKIE]
    (secret,) = stored_secrets(db)
    (row,) = flash_rows(db)
    assert secret not in sealed
    assert secret.encode() not in bytes(row["pad"])

    # Another worker (its own app and connection pool on the same database) shows it.
    with TestClient(create_app(settings)) as other_worker:
        other_worker.cookies.set(COOKIE, client.cookies[COOKIE])
        other_worker.cookies.set(flash.COOKIE, sealed, path=f"{owned['base']}/webhooks")
        shown = other_worker.get(f"{owned['base']}/webhooks")
    assert shown.status_code == 200
    assert secret in shown.text
    # The cookie replayed after that shows nothing: the pad is gone.
    client.cookies.set(flash.COOKIE, sealed, path=f"{owned['base']}/webhooks")
    assert secret not in client.get(f"{owned['base']}/webhooks").text


def test_a_flash_is_for_its_user_and_page_only_and_not_after_it_expires(
    client: TestClient, owned: dict[str, Any], user: AUser, make_user: Any, db: Database
) -> None:
    page_path = f"{owned['base']}/webhooks"
    answer = _add_webhook(client, owned)
    assert answer.status_code == 303, answer.text
    sealed = client.cookies[flash.COOKIE]
    (secret,) = stored_secrets(db)

    def visit(token: str, path: str, value: str) -> Any:
        client.cookies.clear()
        client.cookies.set(COOKIE, token)
        client.cookies.set(flash.COOKIE, value, path=path)
        return client.get(path)

    # Another user with the stolen cookie, on a page of theirs: nothing, and nothing consumed.
    other = make_user()
    mine = create_source(client, other, "Theirs", trafficDomain="https://theirs.example")
    stolen = visit(other.token, f"/ui/sources/{mine.id}/webhooks", sealed)
    assert stolen.status_code == 200 and secret not in stolen.text
    # The same user on another page of theirs: not that page's message.
    assert secret not in visit(user.token, f"{owned['base']}/keys", sealed).text
    # Altered in the browser: nothing, and no error.
    forged = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    for junk in (forged, "not-a-flash", sealed.split(".")[0] + ".%%%", ""):
        answer = visit(user.token, page_path, junk)
        assert answer.status_code == 200 and secret not in answer.text, junk
    assert flash_rows(db) == []  # the forged one was read (and spent) with the real id

    # Expired: nothing.
    client.cookies.clear()
    client.cookies.set(COOKIE, user.token)
    assert _add_webhook(client, owned).status_code == 303
    sealed = client.cookies[flash.COOKIE]
    with db.write() as conn:
        conn.execute(update(ui_flashes).values(expires_at=utcnow() - timedelta(seconds=1)))
    shown = visit(user.token, page_path, sealed).text
    assert all(secret not in shown for secret in stored_secrets(db))
    assert flash_rows(db) == []


# --- the other create forms: sources, ingest keys, shares --------------------------------------


def test_reloading_after_the_other_create_forms_repeats_nothing(
    page: Page, live_server: LiveServer
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    with live_server.api() as api:
        owner = sign_up(api, "Olga Owner", "olga@example.com")
        viewer = sign_up(api, "Vic Viewer", "vic@example.com")
    auth = owner.headers
    sign_in(page, owner)

    page.get_by_label("Name").fill("Payments API")
    page.get_by_label("Domain").fill(DOMAIN)
    page.get_by_role("button", name="Create source").click()
    expect(page.get_by_role("heading", name="Payments API")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Payments API")).to_be_visible()
    with live_server.api() as api:
        sources = api.get("/traffic-source", headers=auth).json()["data"]
    assert [source["name"] for source in sources] == ["Payments API"]
    source_id = sources[0]["id"]

    page.get_by_label("Key name").fill("production")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key-value").inner_text().strip()
    assert key.startswith("lhk_")
    assert key in page.locator("#snippet-asgi").inner_text()  # the snippets carry it too
    page.reload()
    expect(page.get_by_test_id("new-key")).to_have_count(0)  # shown once
    assert key not in page.content()
    with live_server.api() as api:
        keys = api.get(f"/traffic-source/{source_id}/ingest-keys", headers=auth).json()
        assert [k["name"] for k in keys] == ["production"]
        # The key that was shown is the one that works.
        sent = api.post(
            "/ingest-log",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "trafficSourceId": source_id,
                "domainUrl": DOMAIN,
                "pathnameUrl": "/hello",
                "method": "GET",
                "status": 200,
                "elapsedTime": 1,
                "requestHeaders": {},
                "responseHeaders": {},
            },
        )
        assert sent.status_code == 201, sent.text

    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Share with (email)").fill(viewer.email)
    page.get_by_role("button", name="Share read-only").click()
    expect(page.get_by_test_id("share")).to_contain_text(viewer.email)
    page.reload()
    expect(page.get_by_test_id("share")).to_have_count(1)
    expect(page.locator(".field-error")).to_have_count(0)  # no "Already shared" from a re-post
    assert errors == []


def test_create_forms_answer_with_a_redirect(
    client: TestClient, owned: dict[str, Any], user: AUser, make_user: Any, db: Database
) -> None:
    csrf = owned["csrf"]
    created = client.post(
        "/ui/sources",
        data={"csrf": csrf, "name": "Second", "trafficDomain": "https://second.example"},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    assert created.headers["location"].endswith("/keys?new=1")

    viewer = make_user()
    shared = client.post(
        f"{owned['base']}/shares",
        data={"csrf": csrf, "email": viewer.email},
        follow_redirects=False,
    )
    assert shared.status_code == 303, shared.text

    keys_path = f"{owned['base']}/keys"
    answer = client.post(keys_path, data={"csrf": csrf, "name": "ci"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == keys_path
    sealed = client.cookies[flash.COOKIE]
    (row,) = flash_rows(db)
    shown = client.get(keys_path)
    key = re.search(r'id="new-key-value">(lhk_[^<]+)<', shown.text)
    assert key is not None, shown.text
    # Only the key's hash is stored for good; the flash's halves do not hold it either.
    assert key.group(1) not in sealed and key.group(1).encode() not in bytes(row["pad"])
    assert flash_rows(db) == []
    assert key.group(1) not in client.get(keys_path).text
    listed = client.get(f"/traffic-source/{owned['id']}/ingest-keys", headers=user.headers)
    assert [k["name"] for k in listed.json()] == ["ci"]
