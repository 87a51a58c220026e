"""Retention and deletion of traffic records and core logs kept on ClickHouse.

ClickHouse deletes cheaply in whole partitions and dearly row by row (a mutation rewrites
every part it touches). So retention first drops each day partition in which every source's
window has passed, which is all of them for the common case of one retention for everyone, and
deletes by mutation only what is left: the older days of sources with a shorter window than
their neighbours'. A source's deletion, and the deletion of one record, are mutations too.

``DROP PARTITION`` and ``ALTER ... DELETE`` do not go through a ``Distributed`` table: on a
cluster they run on every node's local table (18.16 refuses them on the Distributed one).
Mutations run in the background; the caller waits for them (18.16 has no ``mutations_sync``),
so that a record reported deleted is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import func, select

from logharbor.db import events_schema as ev
from logharbor.db.clickhouse import EventsClient, epoch_ms, literal
from logharbor.db.clickhouse_sql import fetch

# The tables retention applies to; ``record_ids`` follows the records it locates.
RECORD_TABLES = ("http_traffic", "core_logs")
# LLM calls and the other spans of traces, on their source's retention too (llm/retention.py).
TRACE_TABLES = ("generations", "spans")
_DAY_MS = 86_400_000


def _count(client: EventsClient, table: str, source_id: str, before_ms: int | None) -> int:
    events_table = ev.metadata.tables[table]
    where = [events_table.c.traffic_source_id == source_id]
    if before_ms is not None:
        where.append(events_table.c.created_at < before_ms)
    rows = fetch(client, select(func.count().label("n")).where(*where))
    return int(rows[0]["n"]) if rows else 0


def droppable_days(
    client: EventsClient, table: str, cutoffs: Mapping[str, datetime | None]
) -> list[int]:
    """Day partitions (YYYYMMDD) of ``table`` in which every row is past its source's cutoff.

    ``cutoffs`` maps each source that still exists to the time before which its records go
    (None: kept for ever); rows of sources no longer there go whatever their age."""
    rows = client.query(
        "SELECT toYYYYMMDD(toDateTime(intDiv(created_at, 1000))) AS day, "
        "min(created_at) AS first, max(created_at) AS last, "
        f"groupUniqArray(traffic_source_id) AS sources FROM {table} GROUP BY day"
    )
    days = []
    for row in rows:
        end_of_day = (int(row["last"]) // _DAY_MS + 1) * _DAY_MS
        if all(_past(cutoffs, source, end_of_day) for source in row["sources"]):
            days.append(int(row["day"]))
    return sorted(days)


def _past(cutoffs: Mapping[str, datetime | None], source: str, end_of_day_ms: int) -> bool:
    if source not in cutoffs:
        return True  # its source was deleted
    cutoff = cutoffs[source]
    return cutoff is not None and epoch_ms(cutoff) >= end_of_day_ms


def prune(
    client: EventsClient,
    cutoffs: Mapping[str, datetime | None],
    tables: tuple[str, ...] = RECORD_TABLES,
) -> dict[str, int]:
    """Apply every source's retention to ``tables``; returns the rows deleted per table."""
    deleted = {table: 0 for table in tables}
    for table in tables:
        for day in droppable_days(client, table, cutoffs):
            deleted[table] += _rows_of_day(client, table, day)
            ev.alter_local_tables(client, table, f"DROP PARTITION {day}")
        for source_id, cutoff in cutoffs.items():
            if cutoff is None:
                continue
            before = epoch_ms(cutoff)
            old = _count(client, table, source_id, before)
            if old:
                deleted[table] += old
                ev.alter_local_tables(
                    client,
                    table,
                    f"DELETE WHERE traffic_source_id = {literal(source_id)} "
                    f"AND created_at < {before}",
                )
    _prune_record_ids(client, cutoffs)
    client.wait_for_mutations()
    return deleted


def _rows_of_day(client: EventsClient, table: str, day: int) -> int:
    rows = client.query(
        f"SELECT count() AS n FROM {table} "
        f"WHERE toYYYYMMDD(toDateTime(intDiv(created_at, 1000))) = {day}"
    )
    return int(rows[0]["n"]) if rows else 0


def _prune_record_ids(client: EventsClient, cutoffs: Mapping[str, datetime | None]) -> None:
    for day in droppable_days(client, "record_ids", cutoffs):
        ev.alter_local_tables(client, "record_ids", f"DROP PARTITION {day}")
    for source_id, cutoff in cutoffs.items():
        if cutoff is not None and _count(client, "record_ids", source_id, epoch_ms(cutoff)):
            ev.alter_local_tables(
                client,
                "record_ids",
                f"DELETE WHERE traffic_source_id = {literal(source_id)} "
                f"AND created_at < {epoch_ms(cutoff)}",
            )


def delete_source_events(client: EventsClient, source_id: str) -> None:
    """Everything a deleted source stored on ClickHouse."""
    # A deleted source's figures go with it, as the SQL database's cascades take them.
    for table in (*RECORD_TABLES, *TRACE_TABLES, "record_ids", *ev.ROLLUP_TABLES):
        if _count(client, table, source_id, None):
            ev.alter_local_tables(
                client, table, f"DELETE WHERE traffic_source_id = {literal(source_id)}"
            )
    client.wait_for_mutations()


def delete_records_named(client: EventsClient, column: str, name_id: str) -> None:
    """What a deleted name takes with it, as the SQL schema's cascades do: a domain's or a
    pathname's records, a core pathname's core logs. A deleted route template only leaves
    the records it grouped (they keep their concrete pathname)."""
    value = literal(name_id)
    if column == "core_pathname_id":
        ev.alter_local_tables(client, "core_logs", f"DELETE WHERE core_pathname_id = {value}")
    else:
        ev.alter_local_tables(client, "http_traffic", f"DELETE WHERE {column} = {value}")
    if column == "pathname_id":
        ev.alter_local_tables(
            client,
            "http_traffic",
            f"UPDATE route_pathname_id = NULL, route = NULL WHERE route_pathname_id = {value}",
        )
    client.wait_for_mutations()


def delete_record(client: EventsClient, table: str, source_id: str, record_id: str) -> None:
    """One traffic record or core log, with the lookups that locate it."""
    where = f"traffic_source_id = {literal(source_id)} AND id = {literal(record_id)}"
    ev.alter_local_tables(client, table, f"DELETE WHERE {where}")
    ev.alter_local_tables(client, "record_ids", f"DELETE WHERE {where}")
    client.wait_for_mutations()
