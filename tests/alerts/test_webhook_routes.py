"""Webhook CRUD (/webhooks and /webhook), its validation, tenancy and URL policy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from fixtures.sources import Source, insert_source
from fixtures.users import AUser
from logharbor.app import create_app
from logharbor.db.tables import webhooks
from logharbor.settings import Settings


def test_create_list_update_delete(
    client: TestClient, user: AUser, source: Source, receiver: Any
) -> None:
    response = client.post(
        f"/webhooks/{source.id}",
        json={
            "value": receiver.url,
            "level": "warning",
            "type": "WEBHOOK",
            "pathnamePrefix": "/api",
            "statusMin": 400,
            "statusMax": 599,
            "cooldownSeconds": 30,
        },
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert created["level"] == "WARNING"
    assert created["type"] == "webhook"
    assert created["value"] == receiver.url
    assert created["trafficSourceId"] == source.id
    assert (created["pathnamePrefix"], created["statusMin"], created["statusMax"]) == (
        "/api",
        400,
        599,
    )
    assert created["cooldownSeconds"] == 30
    assert created["lastDeliveryStatus"] is None
    assert created["createdAt"].endswith("Z")

    listed = client.get(f"/webhooks/{source.id}", headers=user.headers)
    assert listed.status_code == 200
    assert isinstance(listed.json(), list)
    [item] = listed.json()
    assert "secret" not in item  # shown once, at creation
    assert item["id"] == created["id"]
    assert client.get(f"/webhook/{source.id}", headers=user.headers).json() == listed.json()

    updated = client.put(
        f"/webhooks/{created['id']}",
        json={"level": "FATAL", "pathnamePrefix": None, "statusMin": 500},
        headers=user.headers,
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert (body["level"], body["pathnamePrefix"], body["statusMin"]) == ("FATAL", None, 500)
    assert body["value"] == receiver.url
    assert "secret" not in body

    rotated = client.put(
        f"/webhook/{created['id']}", json={"rotateSecret": True}, headers=user.headers
    )
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in (None, created["secret"])

    deleted = client.delete(f"/webhooks/{created['id']}", headers=user.headers)
    assert deleted.status_code == 204
    assert client.get(f"/webhooks/{source.id}", headers=user.headers).json() == []
    again = client.delete(f"/webhooks/{created['id']}", headers=user.headers)
    assert again.status_code == 404
    assert again.json()["message"] == "Webhook not found"


def test_type_is_guessed_from_the_url(client: TestClient, user: AUser, source: Source) -> None:
    # A public name that needs no network to resolve is not available in tests, so the guess is
    # checked on the helper; the API path is covered by the receiver tests.
    from logharbor.alerts.services import guess_type

    assert guess_type("https://discord.com/api/webhooks/1/abc") == "discord"
    assert guess_type("https://hooks.slack.com/services/T/B/X") == "slack"
    assert guess_type("https://example.org/hook") == "webhook"


def test_bad_input_names_the_field_and_stores_nothing(
    client: TestClient, user: AUser, source: Source, receiver: Any
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"level": "warning"}, "value"),
        ({"value": "", "level": "warning"}, "value"),
        ({"value": receiver.url, "level": "debug"}, "level"),
        ({"value": receiver.url, "level": "info", "type": "teams"}, "type"),
        ({"value": receiver.url, "level": "info", "statusMin": 99}, "statusMin"),
        ({"value": receiver.url, "level": "info", "pathnamePrefix": "api"}, "pathnamePrefix"),
        ({"value": receiver.url, "level": "info", "cooldownSeconds": -1}, "cooldownSeconds"),
        ({"value": "123456789012345678", "level": "info"}, "value"),  # an old Discord channel id
        ({"value": "ftp://example.com/x", "level": "info"}, "value"),
        ({"value": "https://user:pw@127.0.0.1/x", "level": "info"}, "value"),
    ]
    for body, field in cases:
        response = client.post(f"/webhooks/{source.id}", json=body, headers=user.headers)
        assert response.status_code == 400, (body, response.text)
        assert field in response.json()["fieldErrors"], (body, response.json())
    crossed = client.post(
        f"/webhooks/{source.id}",
        json={"value": receiver.url, "level": "info", "statusMin": 500, "statusMax": 400},
        headers=user.headers,
    )
    assert crossed.status_code == 400
    assert client.get(f"/webhooks/{source.id}", headers=user.headers).json() == []
    bad_id = client.put("/webhooks/not-a-uuid", json={"level": "info"}, headers=user.headers)
    assert bad_id.status_code == 400
    assert "webhookId" in bad_id.json()["fieldErrors"]


def test_update_rejects_crossed_range_and_bad_url(
    client: TestClient, make_webhook: Callable[..., dict[str, Any]], user: AUser, receiver: Any
) -> None:
    hook = make_webhook(receiver.url, statusMax=499)
    crossed = client.put(f"/webhooks/{hook['id']}", json={"statusMin": 500}, headers=user.headers)
    assert crossed.status_code == 400
    assert "statusMin" in crossed.json()["fieldErrors"]
    bad = client.put(f"/webhooks/{hook['id']}", json={"value": "nope"}, headers=user.headers)
    assert bad.status_code == 400
    [stored] = client.get(f"/webhooks/{hook['trafficSourceId']}", headers=user.headers).json()
    assert (stored["value"], stored["statusMin"]) == (receiver.url, None)


def test_only_the_owner_manages_webhooks(
    client: TestClient,
    make_user: Callable[..., AUser],
    user: AUser,
    source: Source,
    make_webhook: Callable[..., dict[str, Any]],
    receiver: Any,
) -> None:
    hook = make_webhook(receiver.url)
    stranger = make_user()
    body = {"value": receiver.url, "level": "info"}
    assert (
        client.post(f"/webhooks/{source.id}", json=body, headers=stranger.headers).status_code
        == 403
    )
    assert client.get(f"/webhooks/{source.id}", headers=stranger.headers).status_code == 403
    assert (
        client.put(
            f"/webhooks/{hook['id']}", json={"level": "info"}, headers=stranger.headers
        ).status_code
        == 403
    )
    assert client.delete(f"/webhooks/{hook['id']}", headers=stranger.headers).status_code == 403
    assert client.post(f"/webhooks/{hook['id']}/test", headers=stranger.headers).status_code == 403
    assert (
        client.get(f"/webhooks/{hook['id']}/deliveries", headers=stranger.headers).status_code
        == 403
    )
    missing = "0190f1a2-0000-7000-8000-00000000dead"
    assert client.post(f"/webhooks/{missing}", json=body, headers=user.headers).status_code == 404
    assert client.get(f"/webhooks/{source.id}").status_code == 400  # no token
    assert (
        client.get(f"/webhooks/{source.id}", headers={"Authorization": "Bearer junk"}).status_code
        == 401
    )


Strict = tuple[TestClient, AUser, str]


@pytest.fixture
def strict(settings: Settings, tmp_path: Any, make_user: Callable[..., AUser]) -> Iterator[Strict]:
    """An app with the default URL policy on the test's database, a user and their source."""
    defaults = Settings(
        database_url=settings.database_url,
        data_dir=tmp_path / "strict",
        secret_key=settings.secret_key,
    )
    assert not defaults.webhook_allow_http and not defaults.webhook_allow_private
    with TestClient(create_app(defaults)) as strict_client:
        owner = make_user()  # signed up through the fixture app on the same database
        source = insert_source(strict_client.app.state.db, owner.id).id  # type: ignore[attr-defined]
        yield strict_client, owner, source


def test_default_policy_refuses_http_and_internal_hosts(strict: Strict) -> None:
    strict_client, owner, source = strict
    refused = [
        ("http://example.com/hook", "https"),
        ("https://127.0.0.1/hook", "127.0.0.1"),
        ("https://localhost:8443/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::1]/hook", "::1"),
        ("https://[::ffff:127.0.0.1]/hook", "127.0.0.1"),
        ("https://0.0.0.0/hook", "0.0.0.0"),
        ("https://no-such-host.invalid/hook", "resolve"),
    ]
    for url, reason in refused:
        response = strict_client.post(
            f"/webhooks/{source}", json={"value": url, "level": "fatal"}, headers=owner.headers
        )
        assert response.status_code == 400, (url, response.text)
        assert reason in response.json()["fieldErrors"]["value"], (url, response.json())
    assert strict_client.get(f"/webhooks/{source}", headers=owner.headers).json() == []


def test_ipv6_carrying_an_internal_ipv4_is_refused_and_its_neighbours_saved(
    strict: Strict,
) -> None:
    strict_client, owner, source = strict

    def save(url: str) -> Any:
        body = {"value": url, "level": "fatal"}
        return strict_client.post(f"/webhooks/{source}", json=body, headers=owner.headers)

    refused = [
        ("https://[64:ff9b::a9fe:a9fe]/latest", "169.254.169.254"),  # NAT64
        ("https://[64:ff9b:1::a00:1]/hook", "NAT64"),  # local-use NAT64
        ("https://[::ffff:0:a00:1]/hook", "10.0.0.1"),  # IPv4-translated
        ("https://[::7f00:1]/hook", "127.0.0.1"),  # IPv4-compatible
        ("https://[2002:a9fe:a9fe::1]/hook", "169.254.169.254"),  # 6to4
        ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", "reserved"),  # Teredo
    ]
    for url, reason in refused:
        response = save(url)
        assert response.status_code == 400, (url, response.text)
        assert response.json()["name"] == "BadRequest"
        assert reason in response.json()["fieldErrors"]["value"], (url, response.json())
    assert strict_client.get(f"/webhooks/{source}", headers=owner.headers).json() == []
    for url in ("https://[64:ff9b::808:808]/hook", "https://[2002:808:808::1]/hook"):
        assert save(url).status_code == 201, url


def test_ipv4_numbers_the_dialer_reads_otherwise_are_refused_at_save(
    client: TestClient, user: AUser, source: Source, receiver: Any
) -> None:
    port = receiver.port
    hosts = ["0x7f.1", "017700000001", "2130706433", "127.1", "0177.0.0.1", "127.0.0.1."]
    for host in hosts:
        body = {"value": f"http://{host}:{port}/hook", "level": "fatal"}
        response = client.post(f"/webhooks/{source.id}", json=body, headers=user.headers)
        assert response.status_code == 400, (host, response.text)
        assert "IPv4 address" in response.json()["fieldErrors"]["value"], host
    assert client.get(f"/webhooks/{source.id}", headers=user.headers).json() == []
    hook = client.post(
        f"/webhooks/{source.id}",
        json={"value": receiver.url, "level": "fatal"},
        headers=user.headers,
    ).json()
    moved = client.put(
        f"/webhooks/{hook['id']}",
        json={"value": f"http://0x7f.1:{port}/hook"},
        headers=user.headers,
    )
    assert moved.status_code == 400
    assert "IPv4 address" in moved.json()["fieldErrors"]["value"]
    sent = client.post(f"/webhooks/{hook['id']}/test", headers=user.headers).json()
    assert sent["delivered"] is True
    assert len(receiver.requests) == 1


def test_a_stored_url_the_guard_now_refuses_fails_delivery_without_a_500(
    client: TestClient, user: AUser, source: Source, receiver: Any
) -> None:
    hook = client.post(
        f"/webhooks/{source.id}",
        json={"value": receiver.url, "level": "fatal"},
        headers=user.headers,
    ).json()
    db = client.app.state.db  # type: ignore[attr-defined]
    for host in ("0177.0.0.1", "0x7f.1"):
        # As saved before the guard read hosts the dialer's way.
        with db.write() as conn:
            conn.execute(
                update(webhooks)
                .where(webhooks.c.id == hook["id"])
                .values(value=f"http://{host}:{receiver.port}/hook")
            )
        response = client.post(f"/webhooks/{hook['id']}/test", headers=user.headers)
        assert response.status_code == 200, (host, response.text)
        body = response.json()
        assert body["delivered"] is False
        assert body["error"].startswith("Refused:") and "IPv4 address" in body["error"]
        assert body["webhook"]["lastDeliveryStatus"] == "failed"
    assert receiver.requests == []
