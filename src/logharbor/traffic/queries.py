"""Queries of the traffic-log API. Functions take a Connection and never commit.

Tenancy rule for everything here: rows are looked up *within* a traffic source. An id that exists
but belongs to another source is answered exactly like an unknown id (404 naming the field), so a
caller can neither link another tenant's rows nor learn that they exist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.elements import ColumnElement

from logharbor.auth.deps import Principal
from logharbor.common.errors import Conflict, NotFound
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.bulk import upsertable_insert
from logharbor.db.tables import (
    core_pathnames,
    domains,
    http_traffic,
    pathnames,
    requests,
    responses,
    traffic_sources,
)
from logharbor.traffic.access import can_read, touch_ingest_keys
from logharbor.traffic.normalize import load_body

# A row as read (RowMapping) or as about to be inserted (dict).
Row = Mapping[Any, Any]

# --- get-or-create ----------------------------------------------------------------------------


def insert_ignoring_conflict(
    conn: Connection, table: Table, values: Row, conflict_columns: list[str]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on the given unique columns (SQLite and PostgreSQL)."""
    statement = upsertable_insert(conn.dialect.name, table).values(**values)
    conn.execute(statement.on_conflict_do_nothing(index_elements=conflict_columns))


def _get_or_create(
    conn: Connection, table: Table, key: dict[str, Any], extra: dict[str, Any]
) -> RowMapping:
    """The row with ``key`` (a unique constraint's columns), created when missing.

    Safe under concurrency on both databases: the unique constraint decides, and a loser's
    insert is a no-op that then finds the winner's row.
    """
    where = [table.c[name] == value for name, value in key.items()]
    query = select(table).where(*where)
    row = conn.execute(query).mappings().first()
    if row is not None:
        return row
    insert_ignoring_conflict(
        conn, table, {"id": new_id(), **key, **extra, "created_at": utcnow()}, list(key)
    )
    row = conn.execute(query).mappings().first()
    assert row is not None, "the unique constraint guarantees the row exists now"
    return row


def get_or_create_domain(
    conn: Connection, source_id: str, origin: str, protocol: str
) -> RowMapping:
    return _get_or_create(
        conn, domains, {"traffic_source_id": source_id, "value": origin}, {"protocol": protocol}
    )


def get_or_create_pathname(
    conn: Connection, source_id: str, domain_id: str, value: str
) -> RowMapping:
    return _get_or_create(
        conn,
        pathnames,
        {"domain_id": domain_id, "value": value},
        {"traffic_source_id": source_id},
    )


def get_or_create_core_pathname(conn: Connection, source_id: str, value: str) -> RowMapping:
    return _get_or_create(
        conn, core_pathnames, {"traffic_source_id": source_id, "value": value}, {}
    )


# --- lookups within a source -------------------------------------------------------------------


def _not_found(field: str, what: str) -> NotFound:
    return NotFound(f"{what} not found", field_errors={field: f"{what} not found"})


def row_in_source(
    conn: Connection, table: Table, row_id: str, source_id: str, *, field: str, what: str
) -> RowMapping:
    row = (
        conn.execute(
            select(table).where(table.c.id == row_id, table.c.traffic_source_id == source_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise _not_found(field, what)
    return row


def row_by_id(conn: Connection, table: Table, row_id: str) -> RowMapping | None:
    return conn.execute(select(table).where(table.c.id == row_id)).mappings().first()


def claim_payload(
    conn: Connection,
    table: Table,
    payload_id: str,
    source_id: str,
    principal: Principal,
    *,
    field: str,
    what: str,
    linked: Callable[[Connection, str, str], bool],
) -> RowMapping:
    """A standalone request/response row about to be linked to a record of ``source_id``.

    Only its creator may link it: a row made for this source (e.g. with this source's ingest
    key), or a row the same user created with their token. It may be linked once; the row lock
    (PostgreSQL) or the write lock (SQLite) makes the check-then-link safe across workers.
    """
    row = (
        conn.execute(select(table).where(table.c.id == payload_id).with_for_update())
        .mappings()
        .first()
    )
    mine = row is not None and (
        row["traffic_source_id"] == source_id
        or (
            row["traffic_source_id"] is None
            and not principal.is_ingest_key
            and row["owner_user_id"] == principal.user_id
        )
    )
    if row is None or not mine:
        raise _not_found(field, what)
    link_column = "request_id" if table is requests else "response_id"
    if linked(conn, link_column, payload_id):
        raise Conflict(
            f"{what} is already linked to a record",
            field_errors={field: f"{what} is already linked to a record"},
        )
    if row["traffic_source_id"] is None:
        conn.execute(
            update(table).where(table.c.id == payload_id).values(traffic_source_id=source_id)
        )
    return row


def readable_payload(
    conn: Connection, table: Table, payload_id: str, principal: Principal
) -> RowMapping | None:
    """A request/response the caller may read: its creator's, or one of a readable source."""
    row = row_by_id(conn, table, payload_id)
    if row is None:
        return None
    if row["traffic_source_id"] is None:
        owner = not principal.is_ingest_key and row["owner_user_id"] == principal.user_id
        return row if owner else None
    return row if can_read(conn, row["traffic_source_id"], principal) else None


def delete_payloads_of(conn: Connection, table: Table, condition: ColumnElement[bool]) -> None:
    """Delete the requests and responses of the traffic/core-log rows matching ``condition``.

    Records own their payloads: without this, deleting a record would orphan them (a bug of the
    original).
    """
    owner = table
    for payload, column in ((requests, "request_id"), (responses, "response_id")):
        ids = select(owner.c[column]).where(condition, owner.c[column].is_not(None))
        conn.execute(payload.delete().where(payload.c.id.in_(ids)))


def delete_payloads(conn: Connection, request_ids: list[str], response_ids: list[str]) -> None:
    """Standalone request/response rows of records kept elsewhere (ClickHouse) being deleted."""
    if request_ids:
        conn.execute(requests.delete().where(requests.c.id.in_(request_ids)))
    if response_ids:
        conn.execute(responses.delete().where(responses.c.id.in_(response_ids)))


def touch_ingest_key(conn: Connection, principal: Principal) -> None:
    if principal.ingest_key_id is not None:
        touch_ingest_keys(conn, {principal.ingest_key_id: principal.ingest_key_last_used_at})


# --- JSON shapes -------------------------------------------------------------------------------


def source_json(row: Row, caller_id: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "trafficDomain": row["traffic_domain"],
        "userId": row["user_id"],
        "retentionDays": row["retention_days"],
        "captureLlmContent": row["capture_llm_content"],
        "access": "owner" if row["user_id"] == caller_id else "shared",
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def domain_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "value": row["value"],
        "protocol": row["protocol"],
        "trafficSourceId": row["traffic_source_id"],
        "createdAt": row["created_at"],
    }


def pathname_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "value": row["value"],
        "domainId": row["domain_id"],
        "trafficSourceId": row["traffic_source_id"],
        "createdAt": row["created_at"],
    }


def core_pathname_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "value": row["value"],
        "trafficSourceId": row["traffic_source_id"],
        "createdAt": row["created_at"],
    }


def payload_json(row: Row, *, full: bool, query_params: bool, prefix: str = "") -> dict[str, Any]:
    """A request (``query_params=True``) or response; ``full`` adds the body itself."""
    out: dict[str, Any] = {
        "id": row[prefix + "id"],
        "headers": row[prefix + "headers"],
    }
    if full:
        out["body"] = load_body(row[prefix + "body"])
    out["bodyPreview"] = row[prefix + "body_preview"]
    out["bodySize"] = row[prefix + "body_size"]
    out["bodyTruncated"] = bool(row[prefix + "body_truncated"])
    if query_params:
        out["queryParams"] = row[prefix + "query_params"]
    if full:
        out["trafficSourceId"] = row[prefix + "traffic_source_id"]
    out["createdAt"] = row[prefix + "created_at"]
    return out


def traffic_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": row["status"],
        "method": row["method"],
        "level": row["level"],
        "elapsedTime": row["elapsed_time"],
        "trafficUserId": row["traffic_user_id"],
        "trafficSourceId": row["traffic_source_id"],
        "domainId": row["domain_id"],
        "pathnameId": row["pathname_id"],
        "requestId": row["request_id"],
        "responseId": row["response_id"],
        "createdAt": row["created_at"],
    }


def core_log_json(row: Row) -> dict[str, Any]:
    # elapsedTime is included: the original's omission was a bug.
    return {
        "id": row["id"],
        "status": row["status"],
        "method": row["method"],
        "level": row["level"],
        "elapsedTime": row["elapsed_time"],
        "trafficUserId": row["traffic_user_id"],
        "trafficSourceId": row["traffic_source_id"],
        "corePathnameId": row["core_pathname_id"],
        "requestId": row["request_id"],
        "responseId": row["response_id"],
        # Log lines (OTLP logs) carry their text and trace; calls of a route leave them null.
        "message": row.get("message"),
        "traceId": row.get("trace_id"),
        "spanId": row.get("span_id"),
        "createdAt": row["created_at"],
    }


def record_json(
    traffic: Row,
    *,
    domain: str,
    protocol: str,
    pathname: str,
    request: dict[str, Any] | None,
    response: dict[str, Any] | None,
    route: str | None = None,
) -> dict[str, Any]:
    return {
        "id": traffic["id"],
        "status": traffic["status"],
        "method": traffic["method"],
        "protocol": protocol,
        "level": traffic["level"],
        "elapsedTime": traffic["elapsed_time"],
        "trafficUserId": traffic["traffic_user_id"],
        "trafficSourceId": traffic["traffic_source_id"],
        "domainId": traffic["domain_id"],
        "domain": domain,
        "pathnameId": traffic["pathname_id"],
        "pathname": pathname,
        "routeTemplate": route,
        "request": request,
        "response": response,
        "traceId": traffic["trace_id"],
        "spanId": traffic["span_id"],
        "createdAt": traffic["created_at"],
    }


# --- the joined record view -------------------------------------------------------------------

_SUMMARY = ("id", "headers", "body_preview", "body_size", "body_truncated", "created_at")


_routes = pathnames.alias("routes")


def record_select(*, full: bool = False) -> Any:
    """http_traffic joined with domain, pathname, request and response (labels rq_/rs_)."""
    rq_columns = [*_SUMMARY, "query_params"] + (["body", "traffic_source_id"] if full else [])
    rs_columns = list(_SUMMARY) + (["body", "traffic_source_id"] if full else [])
    return (
        select(
            # A list needs no stack traces: only the record's own page reads them.
            *(column for column in http_traffic.c if full or column.key != "exception"),
            domains.c.value.label("domain"),
            domains.c.protocol.label("protocol"),
            pathnames.c.value.label("pathname"),
            _routes.c.value.label("route"),
            *(requests.c[name].label("rq_" + name) for name in rq_columns),
            *(responses.c[name].label("rs_" + name) for name in rs_columns),
        )
        .select_from(http_traffic)
        .join(domains, domains.c.id == http_traffic.c.domain_id)
        .join(pathnames, pathnames.c.id == http_traffic.c.pathname_id)
        .outerjoin(_routes, _routes.c.id == http_traffic.c.route_pathname_id)
        .outerjoin(requests, requests.c.id == http_traffic.c.request_id)
        .outerjoin(responses, responses.c.id == http_traffic.c.response_id)
    )


def joined_record_json(row: Row, *, full: bool = False) -> dict[str, Any]:
    request = (
        payload_json(row, full=full, query_params=True, prefix="rq_")
        if row["rq_id"] is not None
        else None
    )
    response = (
        payload_json(row, full=full, query_params=False, prefix="rs_")
        if row["rs_id"] is not None
        else None
    )
    record = record_json(
        row,
        domain=row["domain"],
        protocol=row["protocol"],
        pathname=row["pathname"],
        request=request,
        response=response,
        route=row["route"],
    )
    if full:
        record["exception"] = row["exception"]
    return record


def count(conn: Connection, table: Table, conditions: list[ColumnElement[bool]]) -> int:
    return int(
        conn.execute(select(func.count()).select_from(table).where(*conditions)).scalar_one()
    )


def page_of(
    conn: Connection,
    query: Any,
    conditions: list[ColumnElement[bool]],
    order: tuple[Any, bool],
    tiebreak: Any,
    offset: int,
    limit: int,
) -> list[RowMapping]:
    column, descending = order
    ordering = [column.desc(), tiebreak.desc()] if descending else [column.asc(), tiebreak.asc()]
    rows = conn.execute(query.where(*conditions).order_by(*ordering).offset(offset).limit(limit))
    return list(rows.mappings())


def insert_row(conn: Connection, table: Table, values: dict[str, Any]) -> None:
    conn.execute(insert(table).values(**values))


def source_row(conn: Connection, source_id: str) -> RowMapping | None:
    return row_by_id(conn, traffic_sources, source_id)
