"""What the traffic API and the web UI both do with traffic sources, their read-only shares and
their write-only ingest keys; the routes (source_routes.py) and the pages (ui/source_pages.py)
call these with typed arguments and get typed answers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, or_, select, update

from logharbor.auth import queries as auth_queries
from logharbor.auth.deps import Principal
from logharbor.auth.tokens import new_ingest_key
from logharbor.common.errors import BadRequest, Conflict, NotFound
from logharbor.common.ids import is_uuid, new_id
from logharbor.common.pagination import PageMeta, PageRequest, Paginated
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database
from logharbor.db.tables import ingest_keys, traffic_source_shares, traffic_sources, users
from logharbor.traffic import normalize, queries
from logharbor.traffic.access import Access, require_source
from logharbor.traffic.filters import SortRequest, contains
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
    """Rename, change the domain or the retention (``retentionDays: None`` keeps everything)."""
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    if body.trafficDomain is not None:
        changes["traffic_domain"] = _domain(body.trafficDomain)
    if "retentionDays" in body.model_fields_set:
        changes["retention_days"] = body.retentionDays
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
