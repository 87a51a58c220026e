"""Traffic records and core logs read from ClickHouse, in the shapes the SQL queries return.

The rows carry the same keys as ``queries.record_select`` (``domain``, ``pathname``, ``rq_*``,
``rs_*`` ...), so the JSON is made by the same functions whichever store holds the records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from logharbor.db import events_schema as ev
from logharbor.db.clickhouse import EventsClient
from logharbor.db.clickhouse_sql import fetch, scalar

_traffic = ev.http_traffic
_LIST_EXCLUDED = {"exception", "rq_body", "rs_body"}


def record_select(*, full: bool = False) -> Any:
    """The wide traffic row, labelled as ``queries.record_select`` labels the joined one."""
    columns = [
        column
        for column in _traffic.c
        if full or column.key not in _LIST_EXCLUDED
        if column.key not in ("rq_created_at", "rs_created_at")
    ]
    return select(
        *columns,
        _traffic.c.request_id.label("rq_id"),
        _traffic.c.response_id.label("rs_id"),
        _traffic.c.rq_created_at,
        _traffic.c.rs_created_at,
        _traffic.c.traffic_source_id.label("rq_traffic_source_id"),
        _traffic.c.traffic_source_id.label("rs_traffic_source_id"),
    ).select_from(_traffic)


def as_record_row(row: dict[str, Any]) -> dict[str, Any]:
    """A wide row (as ``fetch`` reads one) with the labels ``record_select`` adds."""
    return {
        **row,
        "rq_id": row["request_id"],
        "rs_id": row["response_id"],
        "rq_traffic_source_id": row["traffic_source_id"],
        "rs_traffic_source_id": row["traffic_source_id"],
    }


def linked(client: EventsClient, column: str, payload_id: str) -> bool:
    """Whether a stored record links this request or response (``column``: request_id or
    response_id), as noted in ``record_ids`` when it was stored."""
    table = ev.record_ids
    query = select(func.count()).where(table.c.id == payload_id, table.c.kind == column)
    return bool(scalar(client, query))


def payload_of_record(client: EventsClient, column: str, payload_id: str) -> dict[str, Any] | None:
    """A record's request (``column`` request_id) or response, in a payload row's shape."""
    table = ev.record_ids
    located = fetch(
        client,
        select(table.c.traffic_source_id, table.c.created_at).where(
            table.c.id == payload_id, table.c.kind == column
        ),
    )
    if not located:
        return None
    prefix = "rq_" if column == "request_id" else "rs_"
    rows = fetch(
        client,
        record_select(full=True).where(
            _traffic.c.traffic_source_id == located[0]["traffic_source_id"],
            _traffic.c.created_at == located[0]["created_at"],
            _traffic.c[column] == payload_id,
        ),
    )
    if not rows or rows[0][prefix + "created_at"] is None:
        return None  # linked from a core log, or a standalone row: the SQL database has it
    row = rows[0]
    payload = {key[3:]: value for key, value in row.items() if key.startswith(prefix)}
    payload.update(id=payload_id, traffic_source_id=row["traffic_source_id"], owner_user_id=None)
    return payload


def times_of_trace(client: EventsClient, source_id: str, trace_id: str) -> list[Any]:
    table = ev.record_ids
    rows = fetch(
        client,
        select(table.c.created_at)
        .where(
            table.c.id == trace_id,
            table.c.kind == "trace_id",
            table.c.traffic_source_id == source_id,
        )
        .distinct(),
    )
    return sorted(row["created_at"] for row in rows)


def payload_ids_of(
    client: EventsClient, table: str, column: str, value: str
) -> tuple[list[str], list[str]]:
    """The request and response ids of the records (``table``) whose ``column`` is ``value``:
    those the entity API linked still have their standalone rows in the SQL database."""
    events_table = ev.metadata.tables[table]
    rows = fetch(
        client,
        select(events_table.c.request_id, events_table.c.response_id).where(
            events_table.c[column] == value
        ),
    )
    requests = [row["request_id"] for row in rows if row["request_id"] is not None]
    responses = [row["response_id"] for row in rows if row["response_id"] is not None]
    return requests, responses


def records_by_id(client: EventsClient, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Stored records with these ids, whichever source they belong to (full rows).

    ``record_ids`` is sorted by id, so the lookup reads a few granules; the records themselves
    are then read by (source, time, id), their table's own order."""
    if not ids:
        return []
    located = locate(client, "http_traffic", ids)
    if located is None:
        return []
    return fetch(client, record_select(full=True).where(*located(_traffic)))


def locate(client: EventsClient, kind: str, ids: Sequence[str]) -> Any:
    """Where the rows of ``kind`` (a table) with these ids are, as a function giving the
    conditions that read them from that table by its sorting key (source, time, id); None
    when none is stored."""
    wanted = sorted(set(ids))
    table = ev.record_ids
    located = fetch(
        client,
        select(table.c.traffic_source_id, table.c.created_at).where(
            table.c.id.in_(wanted), table.c.kind == kind
        ),
    )
    if not located:
        return None
    sources = sorted({row["traffic_source_id"] for row in located})
    times = sorted({row["created_at"] for row in located})

    def conditions(events_table: Any) -> list[Any]:
        c = events_table.c
        return [c.traffic_source_id.in_(sources), c.created_at.in_(times), c.id.in_(wanted)]

    return conditions
