"""Delivery to a real HTTP receiver on 127.0.0.1: payloads, signatures, retries, grouping,
cooldown, the test button, the send-time URL guard, restarts and several workers."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from fixtures.network import free_port
from fixtures.records import emit, event
from fixtures.sources import Source, insert_source
from fixtures.users import AUser, insert_user
from fixtures.waiting import wait_until
from fixtures.webhooks import Receiver
from logharbor.alerts import dispatcher, urls
from logharbor.alerts import queries as alert_queries
from logharbor.alerts.dispatcher import Dispatcher
from logharbor.app import create_app
from logharbor.collector.transport import MAX_RETRY_AFTER
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database, make_engine
from logharbor.db.tables import webhook_outbox, webhooks
from logharbor.settings import Settings


def outbox(db: Database) -> list[Any]:
    with db.read() as conn:
        query = select(webhook_outbox).order_by(webhook_outbox.c.created_at, webhook_outbox.c.id)
        return list(conn.execute(query).mappings())


def settled(db: Database, settings: Settings) -> bool:
    """Nothing is due to any webhook, and no send is in flight (a send holds its webhook's
    lease until its outcome is recorded): no delivery can start until something new is queued.
    What a test checks instead of waiting a while and seeing nothing arrive."""
    now = utcnow()
    with db.read() as conn:
        due = alert_queries.due_webhook_ids(conn, now, settings.webhook_group_seconds, 1_000)
        in_flight = conn.execute(
            select(func.count()).select_from(webhooks).where(webhooks.c.claimed_until > now)
        ).scalar_one()
    return due == [] and in_flight == 0


def verify(secret: str, received: Any) -> None:
    stamp = received.headers["x-logharbor-timestamp"]
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + received.body, hashlib.sha256)
    assert received.headers["x-logharbor-signature"] == "sha256=" + expected.hexdigest()
    assert abs(int(stamp) - time.time()) < 300


def test_generic_webhook_gets_signed_json(
    client: TestClient,
    user: AUser,
    db: Database,
    source: Source,
    receiver: Receiver,
    make_webhook: Callable[..., dict[str, Any]],
) -> None:
    hook = make_webhook(receiver.url, level="fatal")
    emit(db, [event(source.id, status=404), event(source.id, status=500, pathname="/users/7")])
    [received] = receiver.wait_for(1)
    verify(hook["secret"], received)
    assert received.headers["content-type"] == "application/json"
    body = received.json()
    assert body["type"] == "logharbor.alert"
    assert body["webhookId"] == hook["id"]
    assert body["trafficSourceId"] == source.id
    assert body["trafficSourceName"] == source.name
    assert received.headers["x-logharbor-delivery"] == body["deliveryId"]
    [alert] = body["alerts"]  # the 404 is below the FATAL threshold
    assert alert["count"] == 1
    assert alert["record"]["status"] == 500
    assert alert["record"]["pathname"] == "/users/7"
    assert alert["record"]["route"] == "/users/:id"
    assert alert["record"]["message"] == "User <n> exploded"
    assert alert["exception"]["state"] == "new"

    tampered = received.body.replace(b"500", b"200")
    with pytest.raises(AssertionError):
        verify(hook["secret"], type(received)(received.path, received.headers, tampered))

    wait_until(
        lambda: (
            client.get(f"/webhooks/{source.id}", headers=user.headers).json()[0][
                "lastDeliveryStatus"
            ]
            == "delivered"
        )
    )
    [listed] = client.get(f"/webhooks/{source.id}", headers=user.headers).json()
    assert listed["lastDeliveryError"] is None
    assert listed["lastDeliveryAt"].endswith("Z")


def test_discord_and_slack_payloads(
    db: Database,
    source: Source,
    receiver: Receiver,
    make_webhook: Callable[..., dict[str, Any]],
) -> None:
    make_webhook(receiver.url.replace("/hook", "/discord"), type="discord", level="warning")
    make_webhook(receiver.url.replace("/hook", "/slack"), type="slack", level="warning")
    emit(
        db,
        [
            event(
                source.id,
                status=503,
                method="POST",
                pathname="/pay",
                preview="@everyone <!channel> down",
            )
        ],
    )
    received = {r.path: r for r in receiver.wait_for(2)}
    discord = received["/discord"].json()
    assert "x-logharbor-signature" not in received["/discord"].headers
    assert source.name in discord["content"]
    [embed] = discord["embeds"]
    assert embed["title"] == "[new exception] FATAL · 503 POST /pay"
    assert embed["color"] == 0xE11D48
    assert "URL: https://api.example.com/pay" in embed["description"]
    assert embed["timestamp"].endswith("Z")
    assert discord["allowed_mentions"] == {"parse": []}  # record text cannot ping anyone
    assert "@everyone" in embed["description"]
    slack = received["/slack"].json()
    assert source.name in slack["text"]
    assert any("503 POST /pay" in block["text"]["text"] for block in slack["blocks"])
    slack_text = json.dumps(slack)
    assert "<!channel>" not in slack_text and "&lt;!channel&gt;" in slack_text


def test_failed_deliveries_are_retried_with_backoff(
    client: TestClient,
    user: AUser,
    db: Database,
    source: Source,
    receiver: Receiver,
    make_webhook: Callable[..., dict[str, Any]],
) -> None:
    receiver.statuses = [500, 503]
    hook = make_webhook(receiver.url)
    emit(db, [event(source.id)])
    [received] = receiver.wait_for(1)
    verify(hook["secret"], received)
    assert receiver.answered == [500, 503, 200]
    wait_until(lambda: outbox(db)[0]["state"] == "delivered")
    [row] = outbox(db)
    assert row["attempts"] == 3
    assert row["last_error"] is None
    [listed] = client.get(f"/webhooks/{source.id}", headers=user.headers).json()
    assert listed["lastDeliveryStatus"] == "delivered"
    deliveries = client.get(f"/webhooks/{hook['id']}/deliveries", headers=user.headers)
    assert deliveries.status_code == 200, deliveries.text
    [delivery] = deliveries.json()["data"]
    assert (delivery["state"], delivery["attempts"], delivery["count"]) == ("delivered", 3, 1)
    assert delivery["deliveredAt"].endswith("Z") and delivery["nextAttemptAt"] is None
    assert delivery["record"]["status"] == 500


def test_a_receivers_retry_after_is_honoured_up_to_the_one_cap(
    db: Database,
    source: Source,
    receiver: Receiver,
    make_webhook: Callable[..., dict[str, Any]],
) -> None:
    make_webhook(receiver.url)
    # A delta, an HTTP date, and a delta beyond the cap that the collector honours too.
    for header, expected in (("120", 120.0), ("Fri, 01 Jan 2100 00:00:00 GMT", 300.0)):
        receiver.statuses = [503]
        receiver.extra_headers = {"Retry-After": header}
        before = utcnow()
        emit(db, [event(source.id)])
        wait_until(lambda: outbox(db)[-1]["state"] == "retrying")
        after = utcnow()
        row = outbox(db)[-1]
        earliest = before + timedelta(seconds=expected)
        assert earliest <= row["next_attempt_at"] <= after + timedelta(seconds=expected), header
        with db.write() as conn:
            conn.execute(update(webhook_outbox).values(state="delivered"))
    assert MAX_RETRY_AFTER == 300.0


@contextmanager
def running_app(settings: Settings, **overrides: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update=overrides))) as test_client:
        yield test_client


def test_gives_up_after_the_retry_window_and_says_why(
    settings: Settings, bare_db: Database, receiver: Receiver
) -> None:
    receiver.statuses = [500] * 1000
    owner = insert_user(bare_db)
    with running_app(settings, webhook_retry_hours=0.5 / 3600) as app_client:
        db: Database = app_client.app.state.db  # type: ignore[attr-defined]
        source = insert_source(db, owner.id).id
        created = app_client.post(
            f"/webhooks/{source}",
            json={"value": receiver.url, "level": "info", "type": "webhook"},
            headers=owner.headers,
        )
        assert created.status_code == 201
        emit(db, [event(source)])
        wait_until(lambda: outbox(db)[0]["state"] == "failed")
        [row] = outbox(db)
        assert row["attempts"] >= 2
        assert row["last_error"] == "HTTP 500: receiver says no"
        [listed] = app_client.get(f"/webhooks/{source}", headers=owner.headers).json()
        assert listed["lastDeliveryStatus"] == "failed"
        assert listed["lastDeliveryError"] == "HTTP 500: receiver says no"
        [delivery] = app_client.get(
            f"/webhook/{listed['id']}/deliveries", headers=owner.headers
        ).json()["data"]
        assert delivery["state"] == "failed"
        assert delivery["lastError"] == "HTTP 500: receiver says no"
        # Given up means no more tries: nothing is due or being sent, so none can come.
        assert settled(db, app_client.app.state.settings)  # type: ignore[attr-defined]


def test_flood_is_grouped_into_one_message_with_a_count(
    client: TestClient,
    user: AUser,
    db: Database,
    source: Source,
    receiver: Receiver,
    make_webhook: Callable[..., dict[str, Any]],
) -> None:
    hook = make_webhook(receiver.url, cooldownSeconds=3600)
    emit(db, [event(source.id, pathname="/users/0")])
    [first] = receiver.wait_for(1)
    assert first.json()["alerts"][0]["count"] == 1
    # 10,000 identical errors (ids differ, so one group) in 20 ingest transactions, all within
    # the cooldown: nothing is sent meanwhile.
    for batch in range(20):
        emit(db, [event(source.id, pathname=f"/users/{batch * 500 + n}") for n in range(500)])
    assert settled(db, client.app.state.settings)  # type: ignore[attr-defined]
    assert len(receiver.requests) == 1
    [pending] = [row for row in outbox(db) if row["state"] == "pending"]
    assert pending["count"] == 10_000
    # The cooldown ends: one message carries the whole flood.
    with db.write() as conn:
        conn.execute(
            update(webhooks).where(webhooks.c.id == hook["id"]).values(next_send_at=utcnow())
        )
    received = receiver.wait_for(2)
    assert len(received) == 2
    [alert] = received[1].json()["alerts"]
    assert alert["count"] == 10_000
    assert alert["exception"]["state"] == "open"
    wait_until(lambda: all(row["state"] == "delivered" for row in outbox(db)))
    assert sorted(row["count"] for row in outbox(db)) == [1, 10_000]


def test_distinct_errors_share_one_message(
    db: Database,
    source: Source,
    receiver: Receiver,
    make_webhook: Callable[..., dict[str, Any]],
    client: TestClient,
) -> None:
    hook = make_webhook(receiver.url, cooldownSeconds=3600)
    # Hold the webhook in cooldown while three different errors arrive.
    with db.write() as conn:
        conn.execute(
            update(webhooks)
            .where(webhooks.c.id == hook["id"])
            .values(next_send_at=utcnow().replace(year=2100))
        )
    emit(
        db,
        [event(source.id, status=500), event(source.id, status=502), event(source.id, status=404)],
    )
    with db.write() as conn:
        conn.execute(update(webhooks).where(webhooks.c.id == hook["id"]).values(next_send_at=None))
    [received] = receiver.wait_for(1)
    assert sorted(alert["record"]["status"] for alert in received.json()["alerts"]) == [
        404,
        500,
        502,
    ]


def test_test_button_sends_now_and_reports(
    client: TestClient,
    user: AUser,
    receiver: Receiver,
    make_webhook: Callable[..., dict[str, Any]],
) -> None:
    hook = make_webhook(receiver.url)
    response = client.post(f"/webhooks/{hook['id']}/test", headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["delivered"], body["statusCode"], body["error"]) == (True, 200, None)
    assert body["webhook"]["lastDeliveryStatus"] == "delivered"
    [received] = receiver.requests
    verify(hook["secret"], received)
    assert received.json()["type"] == "logharbor.test"

    receiver.statuses = [502]
    failed = client.post(f"/webhook/{hook['id']}/test", headers=user.headers).json()
    assert (failed["delivered"], failed["statusCode"]) == (False, 502)
    assert failed["error"] == "HTTP 502: receiver says no"
    assert failed["webhook"]["lastDeliveryStatus"] == "failed"
    assert failed["webhook"]["lastDeliveryError"] == "HTTP 502: receiver says no"

    receiver.stop()
    down = client.post(f"/webhooks/{hook['id']}/test", headers=user.headers).json()
    assert down["delivered"] is False
    assert down["statusCode"] is None
    assert down["error"].startswith("ConnectError")


def test_send_time_guard_refuses_internal_addresses(
    client: TestClient,
    settings: Settings,
    db: Database,
    receiver: Receiver,
    make_webhook: Callable[..., dict[str, Any]],
) -> None:
    hook = make_webhook(receiver.url)
    strict = settings.model_copy(update={"webhook_allow_private": False})
    with db.read() as conn:
        row = conn.execute(select(webhooks).where(webhooks.c.id == hook["id"])).mappings().one()
    outcome = dispatcher.send_test(db, strict, row, "Shop API")
    assert not outcome.ok
    assert outcome.error is not None and "loopback" in outcome.error
    # The connection itself is checked too, whatever validated the URL before.
    transport = urls.GuardedTransport(urls.UrlPolicy(allow_http=True, allow_private=False))
    with (
        httpx.Client(transport=transport) as raw,
        pytest.raises(httpx.ConnectError, match=r"127\.0\.0\.1"),
    ):
        raw.post(receiver.url, content=b"{}")
    assert receiver.requests == []


def test_pending_notifications_survive_a_restart(settings: Settings, bare_db: Database) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    owner = insert_user(bare_db)
    with running_app(settings) as first:
        db: Database = first.app.state.db  # type: ignore[attr-defined]
        source = insert_source(db, owner.id).id
        created = first.post(
            f"/webhooks/{source}", json={"value": url, "level": "fatal"}, headers=owner.headers
        )
        assert created.status_code == 201
        emit(db, [event(source)] * 3)
        # The receiver is down: the first app tries, fails and stops with the row still queued.
        wait_until(lambda: outbox(db)[0]["attempts"] >= 1)
    engine = make_engine(settings.database_url)
    [row] = outbox(Database(engine))
    engine.dispose()
    assert row["state"] in ("retrying", "sending")
    assert row["count"] == 3

    receiver = Receiver().start(port)
    try:
        with running_app(settings):
            [received] = receiver.wait_for(1)
        verify(created.json()["secret"], received)
        assert received.json()["alerts"][0]["count"] == 3
    finally:
        receiver.stop()


def test_several_workers_on_one_database_send_each_message_once(
    settings: Settings, make_user: Callable[..., AUser], db: Database, receiver: Receiver
) -> None:
    owner = make_user()
    sources = [insert_source(db, owner.id).id for _ in range(4)]
    now = utcnow()
    with db.write() as conn:
        for index, source_id in enumerate(sources):
            conn.execute(
                webhooks.insert().values(
                    id=f"0190f1a2-0000-7000-8000-00000000000{index}",
                    traffic_source_id=source_id,
                    type="webhook",
                    value=receiver.url,
                    level="INFO",
                    cooldown_seconds=0,
                    secret="s",
                    created_at=now,
                    updated_at=now,
                )
            )
    databases = [Database(make_engine(settings.database_url)) for _ in range(3)]
    workers = [Dispatcher(database, settings) for database in databases]
    for worker in workers:
        worker.start()
    try:
        emitted = 0
        for round_ in range(15):
            for source_id in sources:
                emit(db, [event(source_id, status=500 + round_ % 3)] * 2)
                emitted += 2
        wait_until(
            lambda: (
                sum(alert["count"] for r in receiver.requests for alert in r.json()["alerts"])
                >= emitted
            )
        )
        # A send sent twice would be one started before this point: stopping the workers below
        # waits for every send in flight, so the count after it is final.
    finally:
        for worker in workers:
            worker.stop()
        for database in databases:
            database.dispose()
    # The app's own dispatcher (the fourth worker) may still be recording a send it made.
    wait_until(
        lambda: all(row["state"] == "delivered" for row in outbox(db)), "every row delivered"
    )
    counted = sum(alert["count"] for r in receiver.requests for alert in r.json()["alerts"])
    assert counted == emitted  # nothing lost, nothing sent twice
    delivery_ids = [r.headers["x-logharbor-delivery"] for r in receiver.requests]
    assert len(delivery_ids) == len(set(delivery_ids))


def test_compose_through_the_api_alerts_within_seconds(
    client: TestClient, user: AUser, receiver: Receiver
) -> None:
    source = client.post(
        "/traffic-source",
        json={"name": "Shop API", "trafficDomain": "https://api.example.com"},
        headers=user.headers,
    )
    assert source.status_code == 201, source.text
    source_id = source.json()["id"]
    hook = client.post(
        f"/webhooks/{source_id}",
        json={"value": receiver.url, "level": "warning"},
        headers=user.headers,
    ).json()
    record = {
        "domainUrl": "https://api.example.com",
        "pathnameUrl": "/orders/981",
        "status": 502,
        "method": "post",
        "elapsedTime": 41.5,
        "requestHeaders": {"Authorization": "Bearer secret-token"},
        "requestBody": {"item": 1},
        "responseHeaders": {},
        "responseBody": {"message": "Upstream 10.0.0.7 timed out after 30000 ms"},
    }
    composed = client.post(f"/http-traffic-record/{source_id}", json=record, headers=user.headers)
    assert composed.status_code == 201, composed.text
    [received] = receiver.wait_for(1)
    verify(hook["secret"], received)
    [alert] = received.json()["alerts"]
    assert alert["record"]["recordId"] == composed.json()["id"]
    assert alert["record"]["route"] == "/orders/:id"
    assert alert["record"]["method"] == "POST"
    assert alert["record"]["message"] == "Upstream <n>.<n>.<n>.<n> timed out after <n> ms"
    assert "secret-token" not in received.body.decode()

    exceptions = client.get(f"/exceptions/{source_id}", headers=user.headers).json()
    assert exceptions["meta"]["totalItems"] == 1
    assert exceptions["data"][0]["count"] == 1
    assert json.dumps(exceptions).count("secret-token") == 0


def test_burst_within_the_group_window_is_one_message(
    settings: Settings, bare_db: Database, receiver: Receiver
) -> None:
    owner = insert_user(bare_db)
    with running_app(settings, webhook_group_seconds=2.0) as app_client:
        db: Database = app_client.app.state.db  # type: ignore[attr-defined]
        source = insert_source(db, owner.id).id
        created = app_client.post(
            f"/webhooks/{source}",
            json={"value": receiver.url, "level": "fatal"},
            headers=owner.headers,
        )
        assert created.status_code == 201
        for n in range(5):
            emit(db, [event(source, pathname=f"/users/{n}")])
        [received] = receiver.wait_for(1)
        assert received.json()["alerts"][0]["count"] == 5
