"""What the traffic API and the web UI both do: traffic sources, their read-only shares and
their write-only ingest keys (source_routes.py, ui/source_pages.py), and reading records and
domains (traffic_routes.py, entity_routes.py, ui/traffic_pages.py). Routes and pages call these
with typed arguments; records and domains come back in their API's JSON shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Table, delete, func, or_, select, update

from logharbor.auth import queries as auth_queries
from logharbor.auth.deps import Principal
from logharbor.auth.tokens import new_ingest_key
from logharbor.common.errors import BadRequest, Conflict, NotFound
from logharbor.common.ids import is_uuid, new_id
from logharbor.common.pagination import PageMeta, PageRequest, Paginated
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database
from logharbor.db.tables import (
    domains,
    http_traffic,
    ingest_keys,
    traffic_source_shares,
    traffic_sources,
    users,
)
from logharbor.traffic import clickhouse_queries, clickhouse_retention, normalize, queries
from logharbor.traffic.access import Access, require_source, require_source_of
from logharbor.traffic.filters import SortRequest, TrafficFilters, contains
from logharbor.traffic.record_reads import RecordReads, record_reads
from logharbor.traffic.schemas import (
    IngestKeyCreated,
    IngestKeyIn,
    IngestKeyOut,
    ShareIn,
    ShareOut,
    TrafficSourceIn,
    TrafficSourceOut,
    TrafficSourceUpdate,
)

SOURCE_SORTS = {
    "createdAt": traffic_sources.c.created_at,
    "updatedAt": traffic_sources.c.updated_at,
    "name": traffic_sources.c.name,
}


def _domain(value: str) -> str:
    try:
        return normalize.normalize_domain(value)[0]
    except ValueError as exc:
        raise BadRequest(field_errors={"trafficDomain": str(exc)}) from None


def _source_out(row: Any, caller_id: str) -> TrafficSourceOut:
    return TrafficSourceOut.model_validate(queries.source_json(row, caller_id))


# --- sources -----------------------------------------------------------------------------------


def create_source(db: Database, principal: Principal, body: TrafficSourceIn) -> TrafficSourceOut:
    """A new traffic source (one monitored app), owned by the caller."""
    now = utcnow()
    row = {
        "id": new_id(),
        "user_id": principal.user_id,
        "name": body.name,
        "traffic_domain": _domain(body.trafficDomain),
        "retention_days": body.retentionDays,
        "capture_llm_content": body.captureLlmContent,
        "created_at": now,
        "updated_at": now,
    }
    with db.write() as conn:
        queries.insert_row(conn, traffic_sources, row)
    return _source_out(row, principal.user_id)


def list_sources(
    db: Database,
    principal: Principal,
    page: PageRequest,
    sort: SortRequest,
    name_contains: str | None = None,
) -> Paginated[TrafficSourceOut]:
    """The caller's traffic sources and those shared with them (see ``access``)."""
    order = sort.resolve(SOURCE_SORTS)
    shared = select(traffic_source_shares.c.traffic_source_id).where(
        traffic_source_shares.c.user_id == principal.user_id
    )
    where = [or_(traffic_sources.c.user_id == principal.user_id, traffic_sources.c.id.in_(shared))]
    if name_contains:
        where.append(contains(traffic_sources.c.name, name_contains))
    with db.read() as conn:
        rows = queries.page_of(
            conn,
            select(traffic_sources),
            where,
            order,
            traffic_sources.c.id,
            page.offset,
            page.page_limit,
        )
        total = queries.count(conn, traffic_sources, where)
    return Paginated[TrafficSourceOut](
        data=[_source_out(r, principal.user_id) for r in rows],
        meta=PageMeta(page=page.page, pageLimit=page.page_limit, totalItems=total),
    )


def get_source(db: Database, principal: Principal, source_id: str) -> TrafficSourceOut:
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
    return _source_out(source, principal.user_id)


def update_source(
    db: Database, principal: Principal, source_id: str, body: TrafficSourceUpdate
) -> TrafficSourceOut:
    """Rename, change the domain, the retention (``retentionDays: None`` keeps everything) or
    whether LLM calls keep their content."""
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    if body.trafficDomain is not None:
        changes["traffic_domain"] = _domain(body.trafficDomain)
    if "retentionDays" in body.model_fields_set:
        changes["retention_days"] = body.retentionDays
    if body.captureLlmContent is not None:
        changes["capture_llm_content"] = body.captureLlmContent
    with db.write() as conn:
        source = require_source(conn, source_id, principal, Access.MANAGE)
        conn.execute(
            update(traffic_sources)
            .where(traffic_sources.c.id == source["id"])
            .values(**changes, updated_at=utcnow())
        )
        updated = queries.source_row(conn, source["id"])
    assert updated is not None
    return _source_out(updated, principal.user_id)


def delete_source(db: Database, principal: Principal, source_id: str) -> None:
    """Delete a traffic source and everything under it (domains, records, keys, shares...)."""
    with db.write() as conn:
        source = require_source(conn, source_id, principal, Access.MANAGE)
        # Every child row references the source with ON DELETE CASCADE.
        conn.execute(delete(traffic_sources).where(traffic_sources.c.id == source["id"]))
    if db.events is not None:
        clickhouse_retention.delete_source_events(db.events, source["id"])


# --- shares ------------------------------------------------------------------------------------


def _share_out(row: Any) -> ShareOut:
    return ShareOut(
        id=row["id"],
        trafficSourceId=row["traffic_source_id"],
        userId=row["user_id"],
        email=row["email"],
        name=row["name"],
        permission=row["permission"],
        createdAt=row["created_at"],
    )


_SHARE_SELECT = select(traffic_source_shares, users.c.email, users.c.name).join(
    users, users.c.id == traffic_source_shares.c.user_id
)


def create_share(db: Database, principal: Principal, source_id: str, body: ShareIn) -> ShareOut:
    """Share a traffic source read-only with another user, by their email."""
    with db.write() as conn:
        source = require_source(conn, source_id, principal, Access.MANAGE)
        target = auth_queries.get_user_by_email(conn, body.email)
        if target is None:
            raise NotFound("User not found", field_errors={"email": "No user with this email"})
        if target["id"] == principal.user_id:
            raise BadRequest(field_errors={"email": "You already own this traffic source"})
        share_id = new_id()
        queries.insert_ignoring_conflict(
            conn,
            traffic_source_shares,
            {
                "id": share_id,
                "traffic_source_id": source["id"],
                "user_id": target["id"],
                "permission": "READ_ONLY",
                "created_at": utcnow(),
            },
            ["traffic_source_id", "user_id"],
        )
        row = (
            conn.execute(_SHARE_SELECT.where(traffic_source_shares.c.id == share_id))
            .mappings()
            .first()
        )
    if row is None:
        raise Conflict(
            "Already shared with this user", field_errors={"email": "Already shared with this user"}
        )
    return _share_out(row)


def list_shares(db: Database, principal: Principal, source_id: str) -> list[ShareOut]:
    """Who the traffic source is shared with (owner only)."""
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.MANAGE)
        rows = conn.execute(
            _SHARE_SELECT.where(traffic_source_shares.c.traffic_source_id == source["id"]).order_by(
                traffic_source_shares.c.created_at, traffic_source_shares.c.id
            )
        ).mappings()
        return [_share_out(r) for r in rows]


def delete_share(db: Database, principal: Principal, source_id: str, user_id: str) -> None:
    """Revoke a share. The owner may revoke any; a viewer may remove their own."""
    if not is_uuid(user_id):
        raise BadRequest(field_errors={"userId": "Invalid id format"})
    user_id = user_id.lower()
    access = Access.READ if user_id == principal.user_id else Access.MANAGE
    with db.write() as conn:
        source = require_source(conn, source_id, principal, access)
        result = conn.execute(
            delete(traffic_source_shares).where(
                traffic_source_shares.c.traffic_source_id == source["id"],
                traffic_source_shares.c.user_id == user_id,
            )
        )
    if result.rowcount == 0:
        raise NotFound("Share not found", field_errors={"userId": "Not shared with this user"})


# --- ingest keys -------------------------------------------------------------------------------


def _key_fields(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "trafficSourceId": row["traffic_source_id"],
        "name": row["name"],
        "prefix": row["key_prefix"],
        "createdAt": row["created_at"],
        "lastUsedAt": row["last_used_at"],
        "revokedAt": row["revoked_at"],
    }


def create_ingest_key(
    db: Database, principal: Principal, source_id: str, body: IngestKeyIn
) -> IngestKeyCreated:
    """A write-only key for a collector: it may send traffic to this source and read nothing.

    The key is in this answer only; we keep its hash.
    """
    key, key_hash = new_ingest_key()
    row = {
        "id": new_id(),
        "name": body.name,
        "key_hash": key_hash,
        "key_prefix": key[:12],
        "created_at": utcnow(),
        "last_used_at": None,
        "revoked_at": None,
    }
    with db.write() as conn:
        source = require_source(conn, source_id, principal, Access.MANAGE)
        row["traffic_source_id"] = source["id"]
        queries.insert_row(conn, ingest_keys, row)
    return IngestKeyCreated(**_key_fields(row), key=key)


def list_ingest_keys(db: Database, principal: Principal, source_id: str) -> list[IngestKeyOut]:
    """The source's ingest keys, revoked ones included (never the key itself)."""
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.MANAGE)
        rows = conn.execute(
            select(ingest_keys)
            .where(ingest_keys.c.traffic_source_id == source["id"])
            .order_by(ingest_keys.c.created_at, ingest_keys.c.id)
        ).mappings()
        return [IngestKeyOut(**_key_fields(r)) for r in rows]


def revoke_ingest_key(db: Database, principal: Principal, source_id: str, key_id: str) -> None:
    """Revoke a key at once; requests made with it answer 401 from then on."""
    if not is_uuid(key_id):
        raise BadRequest(field_errors={"keyId": "Invalid id format"})
    with db.write() as conn:
        source = require_source(conn, source_id, principal, Access.MANAGE)
        where = (
            ingest_keys.c.id == key_id.lower(),
            ingest_keys.c.traffic_source_id == source["id"],
        )
        if conn.execute(select(func.count()).where(*where)).scalar_one() == 0:
            raise NotFound("Ingest key not found", field_errors={"keyId": "Ingest key not found"})
        conn.execute(
            update(ingest_keys)
            .where(*where, ingest_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


# --- records and domains -----------------------------------------------------------------------


def checked_id(value: str, field: str) -> str:
    """An id from a path, lower-cased; a 400 naming ``field`` unless it is a UUID."""
    if not is_uuid(value):
        raise BadRequest(field_errors={field: "Invalid id format"})
    return value.lower()


def record_sorts(table: Table) -> dict[str, Any]:
    """What traffic records and core logs may be sorted by."""
    return {
        "createdAt": table.c.created_at,
        "status": table.c.status,
        "elapsedTime": table.c.elapsed_time,
        "method": table.c.method,
        "level": table.c.level,
    }


def list_records(
    db: Database,
    principal: Principal,
    source_id: str,
    page: PageRequest,
    sort: SortRequest,
    filters: TrafficFilters,
) -> dict[str, Any]:
    """A page of records joined with domain, pathname, request and response (bodies as
    previews): ``{"data": [...], "meta": {...}}``."""
    reads = record_reads(db)
    return _listing(
        reads,
        reads.record_select(),
        reads.traffic,
        principal,
        source_id,
        page,
        sort,
        filters,
        queries.joined_record_json,
    )


def list_rows(
    db: Database,
    principal: Principal,
    source_id: str,
    page: PageRequest,
    sort: SortRequest,
    filters: TrafficFilters,
    kind: str,
    to_json: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """A page of a source's traffic rows or core logs (``kind``), without their payloads,
    from whichever store holds them."""
    reads = record_reads(db)
    table = reads.traffic if kind == "http_traffic" else reads.core_logs
    return _listing(reads, select(table), table, principal, source_id, page, sort, filters, to_json)


def _listing(
    reads: RecordReads,
    statement: Any,
    table: Table,
    principal: Principal,
    source_id: str,
    page: PageRequest,
    sort: SortRequest,
    filters: TrafficFilters,
    to_json: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    with reads.db.read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
    where = filters.conditions(table, source["id"])
    order = sort.resolve(record_sorts(table))
    rows = reads.page(
        statement, where, order, table.c.id, page.offset, page.page_limit, since=filters.start
    )
    return page.envelope([to_json(r) for r in rows], reads.count(table, where))


def get_record(
    db: Database, principal: Principal, source_id: str, record_id: str
) -> dict[str, Any]:
    """One record with its full request and response (headers, query params, bodies)."""
    record_id = checked_id(record_id, "recordId")
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
    reads = record_reads(db)
    if reads.events is None:
        table = reads.traffic
        found = reads.rows(
            reads.record_select(full=True).where(
                table.c.id == record_id, table.c.traffic_source_id == source["id"]
            )
        )
    else:  # looked up by id first: the table is sorted by (source, time, id)
        found = clickhouse_queries.records_by_id(reads.events, [record_id])
    row = next((r for r in found if r["traffic_source_id"] == source["id"]), None)
    if row is None:
        raise NotFound("Record not found", field_errors={"recordId": "Record not found"})
    return queries.joined_record_json(row, full=True)


def delete_traffic_row(
    db: Database, principal: Principal, traffic_id: str, missing: NotFound
) -> None:
    """Delete a traffic record with its request and response, from whichever store has it."""
    if db.events is not None:
        found = clickhouse_queries.records_by_id(db.events, [traffic_id])
        if not found:
            raise missing
        record = found[0]
        with db.write() as conn:
            require_source_of(conn, record["traffic_source_id"], principal, Access.MANAGE, missing)
            # A row the entity API linked keeps its standalone payloads in the SQL database.
            queries.delete_payloads(conn, [record["request_id"]], [record["response_id"]])
            clickhouse_retention.delete_record(
                db.events, "http_traffic", record["traffic_source_id"], traffic_id
            )
        return
    traffic = http_traffic
    with db.write() as conn:
        row = queries.row_by_id(conn, traffic, traffic_id)
        if row is None:
            raise missing
        require_source_of(conn, row["traffic_source_id"], principal, Access.MANAGE, missing)
        queries.delete_payloads_of(conn, traffic, traffic.c.id == traffic_id)
        conn.execute(delete(traffic).where(traffic.c.id == traffic_id))


def delete_named_events(
    conn: Connection, db: Database, table: str, column: str, name_id: str
) -> None:
    """On ClickHouse, what a deleted domain, pathname or core pathname takes with it (the SQL
    schema's cascades): its records, and the standalone payloads the entity API linked to
    them. Run in the SQL transaction that deletes the name, so a failure keeps both."""
    if db.events is None:
        return
    request_ids, response_ids = clickhouse_queries.payload_ids_of(db.events, table, column, name_id)
    queries.delete_payloads(conn, request_ids, response_ids)
    clickhouse_retention.delete_records_named(db.events, column, name_id)


def core_logs_of_trace(
    db: Database, source_id: str, trace_id: str, limit: int = 100
) -> list[dict[str, Any]]:
    """The log lines and core logs of one trace, oldest first: what happened while a request
    of that trace was served."""
    reads = record_reads(db)
    table = reads.core_logs
    rows = reads.of_trace(table, select(table), source_id, trace_id, limit)
    return [queries.core_log_json(row) for row in rows]


def value_listing(
    conn: Connection,
    table: Table,
    where: list[Any],
    page: PageRequest,
    sort: SortRequest,
    value_contains: str | None,
    to_json: Any,
) -> dict[str, Any]:
    """A page of domains, pathnames or core pathnames, sorted by createdAt or value."""
    if value_contains:
        where = [*where, contains(table.c.value, value_contains)]
    rows = queries.page_of(
        conn,
        select(table),
        where,
        sort.resolve({"createdAt": table.c.created_at, "value": table.c.value}),
        table.c.id,
        page.offset,
        page.page_limit,
    )
    return page.envelope([to_json(r) for r in rows], queries.count(conn, table, where))


def list_domains(
    db: Database,
    principal: Principal,
    source_id: str,
    page: PageRequest,
    sort: SortRequest,
    value_contains: str | None = None,
) -> dict[str, Any]:
    """The source's domains: ``{"data": [...], "meta": {...}}``."""
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
        where = [domains.c.traffic_source_id == source["id"]]
        return value_listing(conn, domains, where, page, sort, value_contains, queries.domain_json)
