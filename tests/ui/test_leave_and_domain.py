"""A viewer leaves a source shared with them; the owner changes a source's domain in its settings.

In a real browser first, then the server-side checks over plain HTTP: leaving only ever removes
the caller's own share, and a bad domain is refused on the field by the API's own rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from fixtures.sources import create_source
from fixtures.users import AUser, sign_up
from logharbor.ui.session import COOKIE
from ui.harness import DOMAIN, LiveServer, csrf_of, page_errors, sign_in


def test_owner_changes_the_domain_and_a_viewer_leaves(
    page: Page, browser: Browser, live_server: LiveServer
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    with live_server.api() as api:
        owner = sign_up(api, "Olga Owner", "olga@example.com")
        viewer = sign_up(api, "Vic Viewer", "vic@example.com")
        auth = owner.headers
        source = create_source(api, owner, "Payments API", trafficDomain=DOMAIN)
        shared = api.post(
            f"/traffic-source/{source.id}/shares", headers=auth, json={"email": viewer.email}
        )
        assert shared.status_code == 201, shared.text
    base = f"/ui/sources/{source.id}"

    sign_in(page, owner)
    page.goto(f"{base}/settings")
    expect(page.get_by_role("button", name="Leave")).to_have_count(0)  # owners delete instead
    domain = page.get_by_label("Domain")
    expect(domain).to_have_value(DOMAIN)
    domain.fill("ftp://files.payments.example")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".field-error")).to_contain_text("http:// or https://")
    expect(page.get_by_label("Domain")).to_have_value("ftp://files.payments.example")
    with live_server.api() as api:
        assert api.get(f"/traffic-source/{source.id}", headers=auth).json()["trafficDomain"] == (
            DOMAIN
        )
    # Stored as the API stores it: an origin, host lower-cased, path and default port dropped.
    page.get_by_label("Domain").fill("HTTPS://Shop.Payments.example:443/v2/")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("settings-saved")).to_be_visible()
    expect(page.get_by_label("Domain")).to_have_value("https://shop.payments.example")
    expect(page.locator(".page-head .sub")).to_contain_text("https://shop.payments.example")

    viewer_context = browser.new_context(base_url=live_server.url)
    try:
        other = viewer_context.new_page()
        other.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(other, viewer)
        other.get_by_test_id("source-card").click()
        expect(other.get_by_role("heading", name="Payments API")).to_be_visible()
        other.once("dialog", lambda dialog: dialog.dismiss())
        other.get_by_role("button", name="Leave").click()
        expect(other.get_by_role("heading", name="Payments API")).to_be_visible()
        other.once("dialog", lambda dialog: dialog.accept())
        other.get_by_role("button", name="Leave").click()
        expect(other.get_by_text("No traffic sources yet.")).to_be_visible()
        assert other.goto(base).status == 403  # type: ignore[union-attr]
    finally:
        viewer_context.close()

    page.goto(f"{base}/settings")
    expect(page.get_by_text("Not shared with anyone.")).to_be_visible()
    assert errors == []


# --- server-side checks over plain HTTP ------------------------------------------------------


@pytest.fixture
def shared_source(
    client: TestClient, user: AUser, make_user: Callable[..., AUser]
) -> dict[str, Any]:
    source = create_source(client, user, "Shop", trafficDomain="https://shop.example")
    viewers = [make_user(), make_user()]
    for viewer in viewers:
        answer = client.post(
            f"/traffic-source/{source.id}/shares",
            headers=user.headers,
            json={"email": viewer.email},
        )
        assert answer.status_code == 201, answer.text
    return {"id": source.id, "owner": user, "viewers": viewers}


def _as(client: TestClient, who: AUser) -> str:
    """Sign the client's cookie jar in as ``who``; returns their CSRF token."""
    client.cookies.set(COOKIE, who.token)
    return csrf_of(client, "/")


def _shared_with(client: TestClient, shared: dict[str, Any]) -> set[str]:
    listed = client.get(f"/traffic-source/{shared['id']}/shares", headers=shared["owner"].headers)
    assert listed.status_code == 200, listed.text
    return {share["userId"] for share in listed.json()}


def test_leaving_removes_only_the_callers_own_share(
    client: TestClient, shared_source: dict[str, Any]
) -> None:
    leaver, stays = shared_source["viewers"]
    leave = f"/ui/sources/{shared_source['id']}/leave"
    csrf = _as(client, leaver)
    # Naming someone else in the form changes nothing: the share removed is the session's.
    answer = client.post(leave, data={"csrf": csrf, "userId": stays.id}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert _shared_with(client, shared_source) == {stays.id}
    assert (
        client.get(f"/traffic-source/{shared_source['id']}", headers=leaver.headers).status_code
        == 403
    )
    # Gone is gone: leaving again is refused like any other source the caller cannot read.
    assert client.post(leave, data={"csrf": csrf}).status_code == 403
    assert _shared_with(client, shared_source) == {stays.id}


def test_the_owner_cannot_leave_and_others_are_refused(
    client: TestClient, shared_source: dict[str, Any], make_user: Callable[..., AUser]
) -> None:
    everyone = {viewer.id for viewer in shared_source["viewers"]}
    leave = f"/ui/sources/{shared_source['id']}/leave"

    csrf = _as(client, shared_source["owner"])
    answer = client.post(leave, data={"csrf": csrf})
    assert answer.status_code == 400
    assert "You own this source" in page_errors(answer.text)

    csrf = _as(client, make_user())
    assert client.post(leave, data={"csrf": csrf}).status_code == 403  # not shared with them

    _as(client, shared_source["viewers"][0])
    assert client.post(leave, data={"name": "x"}).status_code == 403  # no CSRF token
    answer = client.post("/ui/sources/not-a-uuid/leave", data={"csrf": csrf_of(client, "/")})
    assert answer.status_code == 400
    assert _shared_with(client, shared_source) == everyone


@pytest.mark.parametrize(
    ("domain", "why"),
    [
        ("ftp://shop.example", "trafficDomain: Must be an http:// or https:// URL"),
        ("", "trafficDomain: Value is required"),
        ("https://", "trafficDomain: Invalid URL format"),
        ("https://user@shop.example", "trafficDomain: Invalid URL format"),
        ("https://" + "a" * 2100 + ".example", "trafficDomain: String should have at most"),
    ],
)
def test_bad_domains_are_refused_on_the_field(
    client: TestClient, shared_source: dict[str, Any], domain: str, why: str
) -> None:
    owner = shared_source["owner"]
    csrf = _as(client, owner)
    answer = client.post(
        f"/ui/sources/{shared_source['id']}/settings",
        data={"csrf": csrf, "name": "Renamed", "trafficDomain": domain, "retentionDays": "9"},
    )
    assert answer.status_code == 400, answer.text
    assert why in page_errors(answer.text)
    stored = client.get(f"/traffic-source/{shared_source['id']}", headers=owner.headers).json()
    assert (stored["name"], stored["trafficDomain"], stored["retentionDays"]) == (
        "Shop",
        "https://shop.example",
        None,
    )


def test_the_domain_is_saved_as_the_api_would_store_it(
    client: TestClient, shared_source: dict[str, Any]
) -> None:
    owner = shared_source["owner"]
    csrf = _as(client, owner)
    url = f"/ui/sources/{shared_source['id']}/settings"

    def stored() -> dict[str, Any]:
        found: dict[str, Any] = client.get(
            f"/traffic-source/{shared_source['id']}", headers=owner.headers
        ).json()
        return found

    answer = client.post(
        url,
        data={"csrf": csrf, "name": "Shop", "trafficDomain": " WSS://API.Shop.example:8443/x "},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert stored()["trafficDomain"] == "https://api.shop.example:8443"
    # A form without the field (a page opened before it existed) keeps the domain.
    answer = client.post(url, data={"csrf": csrf, "name": "Shop 2"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert (stored()["name"], stored()["trafficDomain"]) == (
        "Shop 2",
        "https://api.shop.example:8443",
    )
    # Viewers cannot change it.
    csrf = _as(client, shared_source["viewers"][0])
    answer = client.post(url, data={"csrf": csrf, "name": "Mine", "trafficDomain": "https://x.io"})
    assert answer.status_code == 403
    assert stored()["trafficDomain"] == "https://api.shop.example:8443"
