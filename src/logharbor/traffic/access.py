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
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, RowMapping, bindparam, or_, select, update

from logharbor.auth.deps import Principal
from logharbor.common.errors import BadRequest, Forbidden, LogHarborError, NotFound, Unauthorized
from logharbor.common.ids import is_uuid
from logharbor.common.timestamps import utcnow
from logharbor.db.tables import ingest_keys, traffic_source_shares, traffic_sources, users


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
        raise NotFound(_NO_SOURCE)
    if principal.is_ingest_key:
        if access is Access.INGEST and principal.ingest_source_id == source_id:
            return source
        raise Forbidden(_KEY_ELSEWHERE)
    if source["user_id"] == principal.user_id:
        return source
    if access is Access.READ and is_shared_with(conn, source_id, principal.user_id):
        return source
    raise Forbidden(_NOT_OWNER)


_NO_SOURCE = "Traffic source not found"
_KEY_ELSEWHERE = "This ingest key may only write traffic to its own traffic source."
_NOT_OWNER = "You do not own this traffic source."


def _ingest_refusal(
    source_id: str, owner_id: str | None, principal: Principal
) -> LogHarborError | None:
    """Why ``principal`` may not write traffic to the source ``owner_id`` owns, if it may not."""
    if owner_id is None:
        return NotFound(_NO_SOURCE)
    if principal.is_ingest_key:
        return None if principal.ingest_source_id == source_id else Forbidden(_KEY_ELSEWHERE)
    if owner_id == principal.user_id:
        return None
    return Forbidden(_NOT_OWNER)


# Built once: constructing a statement with an IN list costs more than running it, and these
# run for every group commit of the ingest path.
_OWNERS = select(traffic_sources.c.id, traffic_sources.c.user_id).where(
    traffic_sources.c.id.in_(bindparam("ids", expanding=True))
)
_LIVE_KEYS = select(ingest_keys.c.id, ingest_keys.c.last_used_at).where(
    ingest_keys.c.id.in_(bindparam("ids", expanding=True)), ingest_keys.c.revoked_at.is_(None)
)


def grant_ingest(
    conn: Connection, asks: Sequence[tuple[Principal, str]]
) -> list[LogHarborError | None]:
    """INGEST verdicts for many (principal, source id) pairs at once, in the write transaction.

    The ingest routes take a token's word before the body (signature and expiry for a user
    token, a cached lookup for an ingest key) and confirm it here, where it costs one query for
    a whole group commit: the key must still be unrevoked, the user must still exist. An
    ingest key's last use is recorded here too, at most once a minute.
    """
    source_ids = sorted({source_id for _, source_id in asks})
    owners: dict[str, str] = dict(conn.execute(_OWNERS, {"ids": source_ids}).all())
    key_ids = sorted({p.ingest_key_id for p, _ in asks if p.ingest_key_id is not None})
    live_keys: dict[str, datetime | None] = {}
    if key_ids:
        live_keys = dict(conn.execute(_LIVE_KEYS, {"ids": key_ids}).all())
    verdicts: list[LogHarborError | None] = []
    for principal, source_id in asks:
        if principal.is_ingest_key and principal.ingest_key_id not in live_keys:
            verdicts.append(Unauthorized("Invalid or revoked ingest key"))
            continue
        verdicts.append(_ingest_refusal(source_id, owners.get(source_id), principal))
    # A source's owner exists (users are never deleted from under their sources), so only a
    # refused user token needs the check that its user exists at all.
    doubtful = sorted(
        {p.user_id for (p, _), v in zip(asks, verdicts, strict=True) if v and not p.is_ingest_key}
    )
    if doubtful:
        known = set(conn.execute(select(users.c.id).where(users.c.id.in_(doubtful))).scalars())
        verdicts = [
            Unauthorized() if v and not p.is_ingest_key and p.user_id not in known else v
            for (p, _), v in zip(asks, verdicts, strict=True)
        ]
    touch_ingest_keys(conn, live_keys)
    return verdicts


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


def touch_ingest_keys(conn: Connection, last_used: dict[str, datetime | None]) -> None:
    """Record that ingest keys were used, at most once a minute each (a row hot with every write
    would serialize all ingest of one source on its lock). ``last_used``: key id → last use as
    known when the key was looked up; a recent one costs no statement at all."""
    now = utcnow()
    stale = sorted(key for key, last in last_used.items() if last is None or last < now - _TOUCH)
    if not stale:
        return
    conn.execute(
        update(ingest_keys)
        .where(
            ingest_keys.c.id.in_(stale),
            or_(ingest_keys.c.last_used_at.is_(None), ingest_keys.c.last_used_at < now - _TOUCH),
        )
        .values(last_used_at=now)
    )


_TOUCH = timedelta(minutes=1)
