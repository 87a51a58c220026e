"""Retention: per source, old records and their bodies go in bounded batches; the rest stays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from fixtures import event_rows
from fixtures.records import compose
from fixtures.sources import create_source
from fixtures.users import AUser
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database
from logharbor.db.tables import (
    core_logs,
    exceptions,
    http_traffic,
    requests,
    responses,
    traffic_rollups,
)
from logharbor.traffic.retention import prune_records


def _compose(
    client: TestClient, user: AUser, source_id: str, n: int, status: int = 500
) -> list[str]:
    """``n`` records with bodies (on pathnames of their own), as a collector sends them."""
    return [
        compose(
            client,
            user.headers,
            source_id,
            pathnameUrl=f"/items/{i}",
            status=status,
            elapsedTime=3,
            requestBody={"q": i},
            responseBody={"message": "boom"},
        )["id"]
        for i in range(n)
    ]


def _age(db: Database, record_ids: list[str], days: float) -> None:
    """Make records (and their request/response rows) look ``days`` old."""
    event_rows.age(db, "http_traffic", record_ids, utcnow() - timedelta(days=days))


def _count(db: Database, table: Any, source_id: str) -> int:
    return event_rows.count(db, table.name, source_id)


def test_old_records_and_bodies_go_in_batches_the_rest_stays(
    client: TestClient, user: AUser, db: Database
) -> None:
    kept_source = create_source(client, user, retentionDays=7).id
    forever = create_source(client, user).id
    old = _compose(client, user, kept_source, 7)
    new = _compose(client, user, kept_source, 2)
    untouched = _compose(client, user, forever, 3)
    _age(db, old, days=8)
    _age(db, untouched, days=400)
    rollups_before = _count(db, traffic_rollups, kept_source)
    exceptions_before = _count(db, exceptions, kept_source)
    assert rollups_before > 0 and exceptions_before == 1

    report = prune_records(db, now=utcnow(), batch_size=3)

    assert report.traffic == 7
    assert report.requests == 7 and report.responses == 7
    assert report.batches >= 3  # 7 rows in batches of 3
    assert set(event_rows.ids(db, "http_traffic", kept_source)) == set(new)
    assert _count(db, requests, kept_source) == 2
    assert _count(db, responses, kept_source) == 2
    assert _count(db, http_traffic, forever) == 3
    assert _count(db, requests, forever) == 3
    # Aggregates outlive their raw records.
    assert _count(db, traffic_rollups, kept_source) == rollups_before
    assert _count(db, exceptions, kept_source) == exceptions_before
    # The API agrees: pruned records are gone from the list.
    listed = client.get(f"/http-traffic-record/{kept_source}", headers=user.headers)
    assert listed.status_code == 200, listed.text
    assert {item["id"] for item in listed.json()["data"]} == set(new)
    assert prune_records(db, now=utcnow(), batch_size=3).total == 0  # idempotent


def test_old_core_logs_and_standalone_payloads_go_too(
    client: TestClient, user: AUser, db: Database
) -> None:
    source_id = create_source(client, user, retentionDays=1).id
    pathname = client.post(
        f"/core-pathname/{source_id}", json={"value": "/users/:id"}, headers=user.headers
    )
    assert pathname.status_code in (200, 201), pathname.text
    core = client.post(
        f"/core-log/{source_id}",
        json={
            "corePathnameId": pathname.json()["id"],
            "status": 500,
            "method": "GET",
            "elapsedTime": 5,
        },
        headers=user.headers,
    )
    assert core.status_code == 201, core.text
    when = utcnow() - timedelta(days=2)
    event_rows.age(db, "core_logs", [core.json()["id"]], when)
    with db.write() as conn:
        conn.execute(
            requests.insert().values(
                id="0190f1a2-0000-7000-8000-0000000000aa",
                traffic_source_id=source_id,
                headers={},
                body=None,
                body_preview=None,
                body_size=0,
                body_truncated=False,
                created_at=when,
            )
        )
    report = prune_records(db, now=utcnow())
    assert report.core_logs == 1
    assert report.requests >= 1
    assert _count(db, core_logs, source_id) == 0
    assert _count(db, requests, source_id) == 0
