"""Traffic sources, their read-only shares and their write-only ingest keys.

Every handler is registered once under the documented singular path, with the original server's
plural path stacked as an undocumented alias.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import delete, func, or_, select, update

from logharbor.auth import queries as auth_queries
from logharbor.auth.deps import CurrentUser, Db
from logharbor.auth.tokens import new_ingest_key
from logharbor.common.errors import BadRequest, Conflict, NotFound
from logharbor.common.ids import is_uuid, new_id
from logharbor.common.pagination import Page, Paginated
from logharbor.common.routing import ArkynRoute, also_at
from logharbor.common.timestamps import utcnow
from logharbor.db.tables import ingest_keys, traffic_source_shares, traffic_sources, users
from logharbor.traffic import normalize, queries
from logharbor.traffic.access import Access, require_source
from logharbor.traffic.filters import NameFilter, Sort, contains
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

router = APIRouter(route_class=ArkynRoute, tags=["traffic sources"])

_ERRORS: dict[int | str, dict[str, Any]] = {400: {}, 401: {}, 403: {}, 404: {}}
_SORT = {
    "createdAt": traffic_sources.c.created_at,
    "updatedAt": traffic_sources.c.updated_at,
    "name": traffic_sources.c.name,
}


def _domain(value: str) -> str:
    try:
        return normalize.normalize_domain(value)[0]
    except ValueError as exc:
        raise BadRequest(field_errors={"trafficDomain": str(exc)}) from None


def _no_content() -> Response:
    return Response(status_code=204)


@also_at(router, "/traffic-sources")
@router.post("/traffic-source", status_code=201, response_model=TrafficSourceOut, responses=_ERRORS)
def create_source(body: TrafficSourceIn, principal: CurrentUser, db: Db) -> dict[str, Any]:
    """Create a traffic source (one monitored app); the caller owns it."""
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
    return queries.source_json(row, principal.user_id)


@also_at(router, "/traffic-sources")
@router.get("/traffic-source", response_model=Paginated[TrafficSourceOut], responses=_ERRORS)
def list_sources(
    principal: CurrentUser, db: Db, page: Page, sort: Sort, q: NameFilter
) -> dict[str, Any]:
    """The caller's traffic sources and those shared with them (see ``access``).

    Sort by createdAt (default), updatedAt or name; ``q`` searches the name.
    """
    order = sort.resolve(_SORT)
    shared = select(traffic_source_shares.c.traffic_source_id).where(
        traffic_source_shares.c.user_id == principal.user_id
    )
    where = [or_(traffic_sources.c.user_id == principal.user_id, traffic_sources.c.id.in_(shared))]
    if q:
        where.append(contains(traffic_sources.c.name, q))
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
    return page.envelope([queries.source_json(r, principal.user_id) for r in rows], total)


@also_at(router, "/traffic-sources/{trafficSourceId}")
@router.get("/traffic-source/{trafficSourceId}", response_model=TrafficSourceOut, responses=_ERRORS)
def get_source(trafficSourceId: str, principal: CurrentUser, db: Db) -> dict[str, Any]:
    """One traffic source you own or that is shared with you."""
    with db.read() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.READ)
    return queries.source_json(source, principal.user_id)


@also_at(router, "/traffic-sources/{trafficSourceId}")
@router.put("/traffic-source/{trafficSourceId}", response_model=TrafficSourceOut, responses=_ERRORS)
def update_source(
    trafficSourceId: str, body: TrafficSourceUpdate, principal: CurrentUser, db: Db
) -> dict[str, Any]:
    """Rename, change the domain or the retention (``retentionDays: null`` keeps everything)."""
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    if body.trafficDomain is not None:
        changes["traffic_domain"] = _domain(body.trafficDomain)
    if "retentionDays" in body.model_fields_set:
        changes["retention_days"] = body.retentionDays
    with db.write() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.MANAGE)
        conn.execute(
            update(traffic_sources)
            .where(traffic_sources.c.id == source["id"])
            .values(**changes, updated_at=utcnow())
        )
        updated = queries.source_row(conn, source["id"])
    assert updated is not None
    return queries.source_json(updated, principal.user_id)


@also_at(router, "/traffic-sources/{trafficSourceId}")
@router.delete(
    "/traffic-source/{trafficSourceId}", status_code=204, response_class=Response, responses=_ERRORS
)
def delete_source(trafficSourceId: str, principal: CurrentUser, db: Db) -> Response:
    """Delete a traffic source and everything under it (domains, records, keys, shares...)."""
    with db.write() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.MANAGE)
        # Every child row references the source with ON DELETE CASCADE.
        conn.execute(delete(traffic_sources).where(traffic_sources.c.id == source["id"]))
    return _no_content()


# --- shares ------------------------------------------------------------------------------------


def _share_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "trafficSourceId": row["traffic_source_id"],
        "userId": row["user_id"],
        "email": row["email"],
        "name": row["name"],
        "permission": row["permission"],
        "createdAt": row["created_at"],
    }


_SHARE_SELECT = select(traffic_source_shares, users.c.email, users.c.name).join(
    users, users.c.id == traffic_source_shares.c.user_id
)


@also_at(router, "/traffic-sources/{trafficSourceId}/shares")
@router.post(
    "/traffic-source/{trafficSourceId}/shares",
    status_code=201,
    response_model=ShareOut,
    responses={**_ERRORS, 409: {}},
)
def create_share(
    trafficSourceId: str, body: ShareIn, principal: CurrentUser, db: Db
) -> dict[str, Any]:
    """Share a traffic source read-only with another user, by their email."""
    with db.write() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.MANAGE)
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
    return _share_json(row)


@also_at(router, "/traffic-sources/{trafficSourceId}/shares")
@router.get(
    "/traffic-source/{trafficSourceId}/shares", response_model=list[ShareOut], responses=_ERRORS
)
def list_shares(trafficSourceId: str, principal: CurrentUser, db: Db) -> list[dict[str, Any]]:
    """Who the traffic source is shared with (owner only)."""
    with db.read() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.MANAGE)
        rows = conn.execute(
            _SHARE_SELECT.where(traffic_source_shares.c.traffic_source_id == source["id"]).order_by(
                traffic_source_shares.c.created_at, traffic_source_shares.c.id
            )
        ).mappings()
        return [_share_json(r) for r in rows]


@also_at(router, "/traffic-sources/{trafficSourceId}/shares/{userId}")
@router.delete(
    "/traffic-source/{trafficSourceId}/shares/{userId}",
    status_code=204,
    response_class=Response,
    responses=_ERRORS,
)
def delete_share(trafficSourceId: str, userId: str, principal: CurrentUser, db: Db) -> Response:
    """Revoke a share. The owner may revoke any; a viewer may remove their own."""
    if not is_uuid(userId):
        raise BadRequest(field_errors={"userId": "Invalid id format"})
    user_id = userId.lower()
    access = Access.READ if user_id == principal.user_id else Access.MANAGE
    with db.write() as conn:
        source = require_source(conn, trafficSourceId, principal, access)
        result = conn.execute(
            delete(traffic_source_shares).where(
                traffic_source_shares.c.traffic_source_id == source["id"],
                traffic_source_shares.c.user_id == user_id,
            )
        )
    if result.rowcount == 0:
        raise NotFound("Share not found", field_errors={"userId": "Not shared with this user"})
    return _no_content()


# --- ingest keys -------------------------------------------------------------------------------


def _key_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "trafficSourceId": row["traffic_source_id"],
        "name": row["name"],
        "prefix": row["key_prefix"],
        "createdAt": row["created_at"],
        "lastUsedAt": row["last_used_at"],
        "revokedAt": row["revoked_at"],
    }


@also_at(router, "/traffic-sources/{trafficSourceId}/ingest-keys")
@router.post(
    "/traffic-source/{trafficSourceId}/ingest-keys",
    status_code=201,
    response_model=IngestKeyCreated,
    responses=_ERRORS,
)
def create_ingest_key(
    trafficSourceId: str, body: IngestKeyIn, principal: CurrentUser, db: Db
) -> dict[str, Any]:
    """A write-only key for a collector: it may send traffic to this source and read nothing.

    The key is in this response only; we keep its hash.
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
        source = require_source(conn, trafficSourceId, principal, Access.MANAGE)
        row["traffic_source_id"] = source["id"]
        queries.insert_row(conn, ingest_keys, row)
    return {**_key_json(row), "key": key}


@also_at(router, "/traffic-sources/{trafficSourceId}/ingest-keys")
@router.get(
    "/traffic-source/{trafficSourceId}/ingest-keys",
    response_model=list[IngestKeyOut],
    responses=_ERRORS,
)
def list_ingest_keys(trafficSourceId: str, principal: CurrentUser, db: Db) -> list[dict[str, Any]]:
    """The source's ingest keys, revoked ones included (never the key itself)."""
    with db.read() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.MANAGE)
        rows = conn.execute(
            select(ingest_keys)
            .where(ingest_keys.c.traffic_source_id == source["id"])
            .order_by(ingest_keys.c.created_at, ingest_keys.c.id)
        ).mappings()
        return [_key_json(r) for r in rows]


@also_at(router, "/traffic-sources/{trafficSourceId}/ingest-keys/{keyId}")
@router.delete(
    "/traffic-source/{trafficSourceId}/ingest-keys/{keyId}",
    status_code=204,
    response_class=Response,
    responses=_ERRORS,
)
def revoke_ingest_key(trafficSourceId: str, keyId: str, principal: CurrentUser, db: Db) -> Response:
    """Revoke a key at once; requests made with it answer 401 from now on."""
    if not is_uuid(keyId):
        raise BadRequest(field_errors={"keyId": "Invalid id format"})
    with db.write() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.MANAGE)
        where = (ingest_keys.c.id == keyId.lower(), ingest_keys.c.traffic_source_id == source["id"])
        if conn.execute(select(func.count()).where(*where)).scalar_one() == 0:
            raise NotFound("Ingest key not found", field_errors={"keyId": "Ingest key not found"})
        conn.execute(
            update(ingest_keys)
            .where(*where, ingest_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    return _no_content()
