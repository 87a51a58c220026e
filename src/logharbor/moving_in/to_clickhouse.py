"""Moving stored records from the SQL database to ClickHouse (``logharbor events copy``).

An operator who sets ``LOGHARBOR_EVENTS_URL`` on a running installation has records in
PostgreSQL (or SQLite) that the new store does not know. This copies them across: traffic records
with their requests and responses as one wide row each, core logs, LLM calls and the other spans
of traces, page by page in (time, id) order, and the statistics' rollups (traffic, tokens and
cost) move with them (``move_rollups``). Prompt logs stay in the SQL database and keep naming
their calls by id. Every page is one
multi-row insert per table. A record already on ClickHouse (found in
``record_ids``) is skipped, so the copy can be stopped and run again, and can run while the
server ingests. With ``delete_copied`` each page's rows leave the SQL database once ClickHouse
has them, which frees PostgreSQL's disk; without it they stay (nothing reads them any more).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, delete, func, or_, select

from logharbor.db import events_schema, tables
from logharbor.db.clickhouse import EventsClient, epoch_ms
from logharbor.db.clickhouse_sql import fetch, to_events_row
from logharbor.db.engine import Database
from logharbor.traffic import queries

PAGE_SIZE = 2000


@dataclass
class Copied:
    traffic: int = 0
    core_logs: int = 0
    generations: int = 0
    spans: int = 0
    skipped: int = 0  # already on ClickHouse
    rollups: int = 0  # statistics rows moved

    def lines(self) -> list[str]:
        return [
            f"copied {self.traffic} traffic records and {self.core_logs} core logs "
            f"to ClickHouse ({self.skipped} were there already)",
            f"copied {self.generations} LLM calls and {self.spans} other spans",
            f"moved {self.rollups} statistics rollup rows",
        ]

    def add(self, kind: str, count: int) -> None:
        name = {"http_traffic": "traffic"}.get(kind, kind)
        setattr(self, name, getattr(self, name) + count)


def _on_events(client: EventsClient, kind: str, ids: list[str]) -> set[str]:
    table = events_schema.record_ids
    rows = fetch(client, select(table.c.id).where(table.c.id.in_(ids), table.c.kind == kind))
    return {row["id"] for row in rows}


def _locators(kind: str, row: Mapping[str, Any]) -> list[dict[str, Any]]:
    located = {
        "traffic_source_id": row["traffic_source_id"],
        "created_at": epoch_ms(row["created_at"]),
    }
    found = [{"id": row["id"], "kind": kind, **located}]
    # An LLM call's response_id is its provider's: only records' payloads are located by it.
    linked = ("request_id", "response_id") if kind in ("http_traffic", "core_logs") else ()
    for column in (*linked, "trace_id"):
        if row.get(column) is not None:
            found.append({"id": row[column], "kind": column, **located})
    return found


def _pages(db: Database, statement: Any, table: Table, page_size: int) -> Any:
    after: tuple[datetime, str] | None = None
    while True:
        query = statement
        if after is not None:
            created, last_id = after
            query = query.where(
                or_(
                    table.c.created_at > created,
                    and_(table.c.created_at == created, table.c.id > last_id),
                )
            )
        with db.read() as conn:
            rows = list(
                conn.execute(
                    query.order_by(table.c.created_at, table.c.id).limit(page_size)
                ).mappings()
            )
        if not rows:
            return
        yield rows
        after = (rows[-1]["created_at"], rows[-1]["id"])


def copy_records(
    db: Database,
    client: EventsClient,
    *,
    delete_copied: bool = False,
    page_size: int = PAGE_SIZE,
    advance: Callable[[int], None] = lambda _n: None,
) -> Copied:
    report = Copied()
    traffic = tables.http_traffic
    core = tables.core_logs
    sources = (
        ("http_traffic", traffic, queries.record_select(full=True)),
        (
            "core_logs",
            core,
            select(core, tables.core_pathnames.c.value.label("core_pathname")).join(
                tables.core_pathnames, tables.core_pathnames.c.id == core.c.core_pathname_id
            ),
        ),
        ("generations", tables.generations, select(tables.generations)),
        ("spans", tables.spans, select(tables.spans)),
    )
    for kind, table, statement in sources:
        events_table = events_schema.metadata.tables[kind]
        for rows in _pages(db, statement, table, page_size):
            known = _on_events(client, kind, [row["id"] for row in rows])
            fresh = [row for row in rows if row["id"] not in known]
            client.insert(kind, [to_events_row(events_table, row) for row in fresh])
            client.insert("record_ids", [item for row in fresh for item in _locators(kind, row)])
            report.add(kind, len(fresh))
            report.skipped += len(known)
            if delete_copied:
                _delete(db, table, [row["id"] for row in rows], kind == "http_traffic")
            advance(len(rows))
    report.rollups = move_rollups(db, client)
    return report


_ROLLUP_TABLES = (
    tables.traffic_rollups,
    tables.traffic_rollup_latency,
    tables.traffic_rollup_path_latency,
    tables.llm_rollups,
)


def move_rollups(db: Database, client: EventsClient) -> int:
    """The statistics' rollups go to ClickHouse, where statistics are read once events live
    there. They are moved, not copied (each slice leaves the SQL database in the transaction
    that follows its insert), because appending the same slice twice would count its traffic
    twice: a slice is one source's rows of one resolution and one month. Rows ingested since
    the switch are on ClickHouse already, and add to the moved ones as they should."""
    moved = 0
    for table in _ROLLUP_TABLES:
        events_table = events_schema.metadata.tables[table.name]
        c = table.c
        with db.read() as conn:
            slices = conn.execute(
                select(c.traffic_source_id, c.resolution, func.min(c.bucket_start)).group_by(
                    c.traffic_source_id, c.resolution
                )
            ).all()
        for source_id, resolution, first in slices:
            start = first
            while True:
                where = [
                    c.traffic_source_id == source_id,
                    c.resolution == resolution,
                    c.bucket_start >= start,
                    c.bucket_start < _next_month(start),
                ]
                with db.write() as conn:
                    rows = list(conn.execute(select(table).where(*where)).mappings())
                    # Deleted first, inside the transaction: a refused insert rolls the delete
                    # back, and only a failed commit after an insert could move a slice twice.
                    conn.execute(delete(table).where(*where))
                    client.insert(
                        events_schema.written_to(table.name),
                        [to_events_row(events_table, r) for r in rows],
                    )
                moved += len(rows)
                with db.read() as conn:
                    start = conn.execute(
                        select(func.min(c.bucket_start)).where(
                            c.traffic_source_id == source_id, c.resolution == resolution
                        )
                    ).scalar()
                if start is None:
                    break
    return moved


def _next_month(moment: datetime) -> datetime:
    return (moment.replace(day=1) + timedelta(days=32)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )


def _delete(db: Database, table: Table, ids: list[str], with_payloads: bool) -> None:
    """Remove copied rows from the SQL database; a record's payloads go with it (on ClickHouse
    they are part of its row), a core log's stay (ClickHouse keeps only their ids)."""
    with db.write() as conn:
        if with_payloads:
            queries.delete_payloads_of(conn, table, table.c.id.in_(ids))
        conn.execute(delete(table).where(table.c.id.in_(ids)))


def count(db: Database) -> int:
    """Records, core logs, LLM calls and spans in the SQL database: what a copy goes
    through."""
    with db.read() as conn:
        return sum(
            int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (tables.http_traffic, tables.core_logs, tables.generations, tables.spans)
        )
