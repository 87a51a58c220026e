"""Tenancy: who may do what with a traffic source. Every traffic-family route goes through here.

Three levels:
- READ: the owner, or a user the source is shared with (read-only).
- INGEST: the owner, or an ingest key of this very source (collectors writing traffic).
- MANAGE: the owner with a user token (settings, deletion, shares, keys, webhooks).

A source that does not exist is 404; one that exists but is not the caller's is 403, as the
Arkyn documentation promises.
"""

from __future__ import annotations

import enum

from sqlalchemy import Connection, RowMapping, select

from logharbor.auth.deps import Principal
from logharbor.common.errors import BadRequest, Forbidden, NotFound
from logharbor.common.ids import is_uuid
from logharbor.db.tables import traffic_source_shares, traffic_sources


class Access(enum.Enum):
    READ = "read"
    INGEST = "ingest"
    MANAGE = "manage"


def check_source_id(source_id: str, field: str = "trafficSourceId") -> str:
    if not is_uuid(source_id):
        raise BadRequest(field_errors={field: "Invalid traffic source id format"})
    return source_id.lower()


def is_shared_with(conn: Connection, source_id: str, user_id: str) -> bool:
    query = select(traffic_source_shares.c.id).where(
        traffic_source_shares.c.traffic_source_id == source_id,
        traffic_source_shares.c.user_id == user_id,
    )
    return conn.execute(query).first() is not None


def require_source(
    conn: Connection, source_id: str, principal: Principal, access: Access
) -> RowMapping:
    """The source row if ``principal`` may act on it at ``access``; raises 400/403/404 otherwise."""
    source_id = check_source_id(source_id)
    source = (
        conn.execute(select(traffic_sources).where(traffic_sources.c.id == source_id))
        .mappings()
        .first()
    )
    if source is None:
        raise NotFound("Traffic source not found")
    if principal.is_ingest_key:
        if access is Access.INGEST and principal.ingest_source_id == source_id:
            return source
        raise Forbidden("This ingest key may only write traffic to its own traffic source.")
    if source["user_id"] == principal.user_id:
        return source
    if access is Access.READ and is_shared_with(conn, source_id, principal.user_id):
        return source
    raise Forbidden("You do not own this traffic source.")


def can_read(conn: Connection, source_id: str, principal: Principal) -> bool:
    """Whether a user token may read ``source_id`` (owner or share); ingest keys never read."""
    if principal.is_ingest_key:
        return False
    owner = conn.execute(
        select(traffic_sources.c.user_id).where(traffic_sources.c.id == source_id)
    ).scalar()
    if owner is None:
        return False
    return owner == principal.user_id or is_shared_with(conn, source_id, principal.user_id)


def require_source_of(
    conn: Connection,
    source_id: str,
    principal: Principal,
    access: Access,
    not_found: NotFound,
) -> RowMapping:
    """``require_source`` for a resource addressed by its own id (a domain, a record...).

    A caller who cannot even read the source gets the resource's own 404, so another tenant's
    ids are indistinguishable from unknown ones. A read-only viewer trying to change it gets 403.
    """
    try:
        return require_source(conn, source_id, principal, access)
    except Forbidden:
        if access is not Access.READ and can_read(conn, source_id, principal):
            raise
        raise not_found from None
