"""Retention: per traffic source, records older than its ``retention_days`` are deleted.

Deletion goes in bounded batches, each its own short write transaction, so that ingestion (which
needs the same write lock on SQLite) never waits for more than one batch. A batch deletes
traffic records (http_traffic, core_logs) first and then their request/response rows (the
bodies) unless another record still points at them; standalone requests/responses past the
cutoff go too. Rollups and exceptions are aggregates and outlive the records; the LLM calls and
spans of the source's traces follow the same retention (llm/retention.py).

The retention job (``logharbor/retention_job.py``) runs this every hour, and ``logharbor prune``
on demand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, Table, and_, delete, exists, select

from logharbor.db.clickhouse import EventsClient
from logharbor.db.engine import Database
from logharbor.db.tables import core_logs, http_traffic, requests, responses, traffic_sources
from logharbor.traffic import clickhouse_retention


@dataclass
class RecordsPruned:
    traffic: int = 0
    core_logs: int = 0
    requests: int = 0
    responses: int = 0
    batches: int = 0
    # Each source pruned, with the time before which its records went.
    cutoffs: dict[str, datetime] = field(default_factory=dict)

    @property
    def sources(self) -> list[str]:
        return list(self.cutoffs)

    @property
    def total(self) -> int:
        return self.traffic + self.core_logs + self.requests + self.responses


def _never() -> bool:
    return False


def prune_records(
    db: Database,
    *,
    now: datetime,
    batch_size: int = 1000,
    should_stop: Callable[[], bool] = _never,
) -> RecordsPruned:
    """Apply every source's retention; ``should_stop`` is asked between batches (shutdown)."""
    report = RecordsPruned()
    with db.read() as conn:
        sources = sources_with_retention(conn)
    if db.events is not None:
        _prune_events(db, db.events, now, report)
    for source in sources:
        if should_stop():
            break
        cutoff = now - timedelta(days=source["retention_days"])
        prune_source(db, source["id"], cutoff, batch_size, report, should_stop)
        report.cutoffs[source["id"]] = cutoff
    return report


def event_cutoffs(db: Database, now: datetime) -> dict[str, datetime | None]:
    """Every source's cutoff (None: kept for ever), for retention on ClickHouse, which goes
    over every source at once."""
    with db.read() as conn:
        every_source = conn.execute(
            select(traffic_sources.c.id, traffic_sources.c.retention_days)
        ).all()
    return {
        source_id: now - timedelta(days=days) if days else None for source_id, days in every_source
    }


def _prune_events(db: Database, events: EventsClient, now: datetime, report: RecordsPruned) -> None:
    """Records on ClickHouse: by whole day partitions where it can (clickhouse_retention)."""
    deleted = clickhouse_retention.prune(events, event_cutoffs(db, now))
    report.traffic += deleted["http_traffic"]
    report.core_logs += deleted["core_logs"]
    # A record on ClickHouse carries its request and response: they went with it.
    report.requests += deleted["http_traffic"]
    report.responses += deleted["http_traffic"]
    report.batches += 1


def prune_source(
    db: Database,
    source_id: str,
    cutoff: datetime,
    batch_size: int,
    report: RecordsPruned,
    should_stop: Callable[[], bool] = _never,
) -> None:
    for table in (http_traffic, core_logs):
        while True:
            with db.write() as conn:
                count, request_ids, response_ids = delete_old_records(
                    conn, table, source_id, cutoff, batch_size
                )
                report.requests += delete_payloads(conn, "request", request_ids)
                report.responses += delete_payloads(conn, "response", response_ids)
            report.batches += 1
            if table is http_traffic:
                report.traffic += count
            else:
                report.core_logs += count
            if count < batch_size or should_stop():
                break
    for kind in ("request", "response"):
        while True:
            with db.write() as conn:
                count = delete_old_orphan_payloads(conn, kind, source_id, cutoff, batch_size)
            report.batches += 1
            if kind == "request":
                report.requests += count
            else:
                report.responses += count
            if count < batch_size or should_stop():
                break


# --- queries: each takes a Connection and never commits ---------------------------------------


def sources_with_retention(conn: Connection) -> Sequence[RowMapping]:
    query = select(traffic_sources.c.id, traffic_sources.c.retention_days).where(
        traffic_sources.c.retention_days.is_not(None), traffic_sources.c.retention_days > 0
    )
    return conn.execute(query).mappings().all()


def delete_old_records(
    conn: Connection, table: Table, source_id: str, cutoff: datetime, limit: int
) -> tuple[int, list[str], list[str]]:
    """Delete up to ``limit`` rows of ``table`` (http_traffic or core_logs) older than ``cutoff``.

    Returns the count and the request/response ids those rows pointed at.
    """
    query = (
        select(table.c.id, table.c.request_id, table.c.response_id)
        .where(table.c.traffic_source_id == source_id, table.c.created_at < cutoff)
        .limit(limit)
    )
    rows = conn.execute(query).all()
    if not rows:
        return 0, [], []
    conn.execute(delete(table).where(table.c.id.in_([row.id for row in rows])))
    request_ids = [row.request_id for row in rows if row.request_id]
    response_ids = [row.response_id for row in rows if row.response_id]
    return len(rows), request_ids, response_ids


def _payload_table(kind: str) -> tuple[Table, str]:
    match kind:
        case "request":
            return requests, "request_id"
        case "response":
            return responses, "response_id"
        case _:
            raise ValueError(kind)


def _unreferenced(payload: Table, column: str) -> Any:
    return and_(
        ~exists().where(http_traffic.c[column] == payload.c.id),
        ~exists().where(core_logs.c[column] == payload.c.id),
    )


def delete_payloads(conn: Connection, kind: str, ids: Sequence[str]) -> int:
    """Delete these requests/responses rows unless another record still points at them."""
    if not ids:
        return 0
    table, column = _payload_table(kind)
    result = conn.execute(
        delete(table).where(table.c.id.in_(list(ids)), _unreferenced(table, column))
    )
    return result.rowcount


def delete_old_orphan_payloads(
    conn: Connection, kind: str, source_id: str, cutoff: datetime, limit: int
) -> int:
    """Standalone requests/responses (never linked to a record) that are past the cutoff."""
    table, column = _payload_table(kind)
    ids = (
        select(table.c.id)
        .where(
            table.c.traffic_source_id == source_id,
            table.c.created_at < cutoff,
            _unreferenced(table, column),
        )
        .limit(limit)
    )
    found = list(conn.execute(ids).scalars())
    if not found:
        return 0
    return conn.execute(delete(table).where(table.c.id.in_(found))).rowcount
