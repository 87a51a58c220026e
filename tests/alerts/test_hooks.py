"""The ingest side: exceptions and outbox rows written in the traffic transaction.

These run without an app (so no delivery worker races the assertions): a bare database, rows
published the way every ingest path publishes them.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from fixtures.records import ago, emit, event, publish
from fixtures.sources import Source, insert_source
from logharbor.alerts import queries
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database
from logharbor.db.tables import exceptions, webhook_outbox, webhooks


def add_webhook(db: Database, source_id: str, **fields: Any) -> str:
    now = utcnow()
    row = {
        "id": new_id(),
        "traffic_source_id": source_id,
        "type": "webhook",
        "value": "https://hooks.example.com/x",
        "level": "WARNING",
        "cooldown_seconds": 60,
        "secret": "s",
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    with db.write() as conn:
        conn.execute(insert(webhooks).values(row))
    return str(row["id"])


def outbox(db: Database) -> list[Any]:
    with db.read() as conn:
        return list(
            conn.execute(select(webhook_outbox).order_by(webhook_outbox.c.created_at)).mappings()
        )


def all_exceptions(db: Database) -> list[Any]:
    with db.read() as conn:
        return list(conn.execute(select(exceptions).order_by(exceptions.c.created_at)).mappings())


def test_fatal_records_group_into_one_exception(bare_db: Database, bare_source: Source) -> None:
    first = ago(minutes=5)
    emit(
        bare_db,
        [
            event(bare_source.id, pathname="/users/1", at=first),
            event(bare_source.id, pathname="/users/2"),
        ],
    )
    emit(
        bare_db,
        [
            event(
                bare_source.id,
                kind="core",
                pathname="/users/:id",
                preview='{"message":"User 7 exploded"}',
            )
        ],
    )
    emit(
        bare_db, [event(bare_source.id, status=404), event(bare_source.id, status=200)]
    )  # not FATAL: no exception

    [exc] = all_exceptions(bare_db)
    assert exc["count"] == 3
    assert exc["status"] == "open"
    assert exc["route"] == "/users/:id"
    assert exc["http_status"] == 500
    assert exc["message"] == "User <n> exploded"
    assert exc["first_seen_at"] == first
    assert exc["last_seen_at"] > first
    assert exc["sample"]["pathname"] == "/users/:id"  # the latest occurrence
    assert exc["sample"]["message"] == "User <n> exploded"


def test_different_errors_are_different_exceptions(bare_db: Database, bare_source: Source) -> None:
    emit(
        bare_db,
        [
            event(bare_source.id),
            event(bare_source.id, status=503),
            event(bare_source.id, preview="boom"),
        ],
    )
    assert len(all_exceptions(bare_db)) == 3


def test_resolved_exception_reopens_on_recurrence(bare_db: Database, bare_source: Source) -> None:
    emit(bare_db, [event(bare_source.id)])
    [exc] = all_exceptions(bare_db)
    with bare_db.write() as conn:
        queries.set_exception_status(conn, exc["id"], "resolved", utcnow())
    add_webhook(bare_db, bare_source.id, level="FATAL")
    emit(bare_db, [event(bare_source.id)])

    [exc] = all_exceptions(bare_db)
    assert exc["status"] == "open"
    assert exc["resolved_at"] is None
    assert exc["times_reopened"] == 1
    assert exc["reopened_at"] is not None
    assert exc["count"] == 2
    [row] = outbox(bare_db)
    assert row["exception_id"] == exc["id"]
    assert row["exception_state"] == "reopened"


def test_no_webhook_means_no_outbox_and_info_costs_nothing(
    bare_db: Database, bare_source: Source
) -> None:
    emit(bare_db, [event(bare_source.id, status=200) for _ in range(50)])
    assert outbox(bare_db) == []
    assert all_exceptions(bare_db) == []


def test_flood_is_one_outbox_row_with_a_count(bare_db: Database, bare_source: Source) -> None:
    hook = add_webhook(bare_db, bare_source.id)
    for _ in range(20):
        emit(bare_db, [event(bare_source.id, pathname=f"/users/{n}") for n in range(50)])
    [row] = outbox(bare_db)
    assert row["webhook_id"] == hook
    assert row["count"] == 1000
    assert row["state"] == "pending"
    assert row["pending_key"] == row["group_key"]
    assert row["exception_state"] == "new"


def test_taken_row_stops_growing_and_a_new_one_opens(
    bare_db: Database, bare_source: Source
) -> None:
    hook = add_webhook(bare_db, bare_source.id)
    emit(bare_db, [event(bare_source.id)] * 3)
    with bare_db.write() as conn:
        taken = queries.take_due_rows(conn, hook, utcnow() + timedelta(seconds=1), 0, 10)
    assert [row["count"] for row in taken] == [3]
    emit(bare_db, [event(bare_source.id)] * 2)
    rows = outbox(bare_db)
    assert sorted((row["state"], row["count"]) for row in rows) == [("pending", 2), ("sending", 3)]


def test_level_threshold_and_filters(bare_db: Database, bare_source: Source) -> None:
    warning = add_webhook(bare_db, bare_source.id, level="WARNING")
    fatal = add_webhook(bare_db, bare_source.id, level="FATAL")
    info_api = add_webhook(bare_db, bare_source.id, level="INFO", pathname_prefix="/api/")
    only_404 = add_webhook(bare_db, bare_source.id, level="INFO", status_min=404, status_max=404)
    emit(
        bare_db,
        [
            event(bare_source.id, status=200, pathname="/home"),
            event(bare_source.id, status=200, pathname="/api/a"),
            event(bare_source.id, status=404, pathname="/home"),
            event(bare_source.id, status=500, pathname="/api/b"),
        ],
    )
    counts: dict[str, int] = {}
    for row in outbox(bare_db):
        counts[row["webhook_id"]] = counts.get(row["webhook_id"], 0) + row["count"]
    assert counts == {warning: 2, fatal: 1, info_api: 2, only_404: 1}


def test_other_sources_webhooks_are_not_triggered(bare_db: Database, bare_source: Source) -> None:
    with bare_db.read() as conn:
        owner = conn.execute(select(func.min(webhooks.c.id))).scalar()
    assert owner is None
    other = insert_source(bare_db, bare_source.owner_id).id
    add_webhook(bare_db, other, level="INFO")
    emit(bare_db, [event(bare_source.id, status=500)])
    assert outbox(bare_db) == []


def test_rolled_back_ingest_queues_nothing(bare_db: Database, bare_source: Source) -> None:
    add_webhook(bare_db, bare_source.id)
    with pytest.raises(RuntimeError), bare_db.write() as conn:
        publish(bare_db, conn, [event(bare_source.id)])
        raise RuntimeError("the traffic insert failed")
    assert outbox(bare_db) == []
    assert all_exceptions(bare_db) == []


def test_only_fatal_records_count_towards_an_exception(
    bare_db: Database, bare_source: Source
) -> None:
    fatal = event(bare_source.id)
    # A client-set level that its status would not give: same fingerprint, not FATAL.
    warning = dataclasses.replace(event(bare_source.id), level="WARNING")
    emit(bare_db, [fatal, warning, warning])
    [exc] = all_exceptions(bare_db)
    assert exc["count"] == 1
    assert exc["sample"]["recordId"] == fatal.id
