"""Tests' direct access to stored traffic records and core logs, on either store.

Tests that age records or count them reach past the API. With events on ClickHouse (the
``chdb`` backend) the rows live there, and a record's time is in its table's sorting key, so it
cannot be updated in place: it is written again with the new time and the old row deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update

from logharbor.db import tables
from logharbor.db.clickhouse import EventsClient, epoch_ms, literal
from logharbor.db.engine import Database
from logharbor.traffic.clickhouse_retention import wait_for_mutations


def count(db: Database, kind: str, source_id: str) -> int:
    """Rows of ``kind`` (http_traffic, core_logs, requests or responses) of a source."""
    if db.events is not None and kind in ("http_traffic", "core_logs", "requests", "responses"):
        table = "core_logs" if kind == "core_logs" else "http_traffic"
        on_events = db.events.query(
            f"SELECT count() AS n FROM {table} WHERE traffic_source_id = {literal(source_id)}"
        )[0]["n"]
        if kind in ("http_traffic", "core_logs"):
            return int(on_events)
        return int(on_events) + _count_sql(db, kind, source_id)
    return _count_sql(db, kind, source_id)


def ids(db: Database, kind: str, source_id: str) -> list[str]:
    """The ids of a source's traffic records or core logs (``kind``)."""
    if db.events is not None:
        rows = db.events.query(
            f"SELECT id FROM {kind} WHERE traffic_source_id = {literal(source_id)}"
        )
        return [row["id"] for row in rows]
    table = getattr(tables, kind)
    with db.read() as conn:
        query = select(table.c.id).where(table.c.traffic_source_id == source_id)
        return list(conn.execute(query).scalars())


def _count_sql(db: Database, kind: str, source_id: str) -> int:
    table = getattr(tables, kind)
    with db.read() as conn:
        query = select(func.count()).select_from(table)
        return int(conn.execute(query.where(table.c.traffic_source_id == source_id)).scalar_one())


def age(db: Database, kind: str, ids: Sequence[str], when: datetime) -> None:
    """Make records of ``kind`` (http_traffic or core_logs), their payloads and the lookups
    that locate them look created at ``when``."""
    if db.events is not None:
        _age_events(db.events, kind, ids, epoch_ms(when))
        return
    table = getattr(tables, kind)
    with db.write() as conn:
        rows = conn.execute(
            select(table.c.request_id, table.c.response_id).where(table.c.id.in_(ids))
        ).all()
        conn.execute(update(table).where(table.c.id.in_(ids)).values(created_at=when))
        for payload, column in ((tables.requests, 0), (tables.responses, 1)):
            payload_ids = [row[column] for row in rows if row[column] is not None]
            conn.execute(
                update(payload).where(payload.c.id.in_(payload_ids)).values(created_at=when)
            )


def _age_events(client: EventsClient, kind: str, ids: Sequence[str], when_ms: int) -> None:
    id_list = literal(list(ids))
    rows = client.query(
        f"SELECT created_at, request_id, response_id, trace_id FROM {kind} WHERE id IN {id_list}"
    )
    times = sorted({row["created_at"] for row in rows})
    located = sorted(
        {*ids}
        | {row[key] for row in rows for key in ("request_id", "response_id", "trace_id")} - {None}
    )
    replaced = f"{when_ms} AS created_at"
    if kind == "http_traffic":
        replaced += "".join(
            f", if(isNull({column}), NULL, {when_ms}) AS {column}"
            for column in ("rq_created_at", "rs_created_at")
        )
    client.command(
        f"INSERT INTO {kind} SELECT * REPLACE ({replaced}) FROM {kind} WHERE id IN {id_list}"
    )
    client.command(f"ALTER TABLE {kind} DELETE WHERE id IN {id_list} AND created_at != {when_ms}")
    if times:
        # The lookups that locate these records (by id, payload id and trace) move with them.
        where = f"created_at IN {literal(times)} AND id IN {literal(located)}"
        client.command(
            f"INSERT INTO record_ids SELECT * REPLACE ({when_ms} AS created_at) FROM record_ids "
            f"WHERE {where}"
        )
        client.command(f"ALTER TABLE record_ids DELETE WHERE {where}")
    wait_for_mutations(client)
