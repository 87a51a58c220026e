from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError

from logharbor.common.errors import Conflict
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.tables import ingest_keys, traffic_sources, users


def create_user(
    conn: Connection, *, email: str, name: str, password_hash: str, utc: int = 0
) -> RowMapping:
    now = utcnow()
    row = {
        "id": new_id(),
        "email": email.strip().lower(),
        "name": name,
        "password_hash": password_hash,
        "utc": utc,
        "created_at": now,
        "updated_at": now,
    }
    try:
        # A savepoint, so that a duplicate leaves the caller's transaction usable.
        with conn.begin_nested():
            conn.execute(insert(users).values(row))
    except IntegrityError as exc:
        raise Conflict("Email already in use.") from exc
    return get_user(conn, row["id"])  # type: ignore[return-value]


def get_user(conn: Connection, user_id: str) -> RowMapping | None:
    return conn.execute(select(users).where(users.c.id == user_id)).mappings().first()


def get_user_by_email(conn: Connection, email: str) -> RowMapping | None:
    query = select(users).where(users.c.email == email.strip().lower())
    return conn.execute(query).mappings().first()


def update_user(conn: Connection, user_id: str, changes: dict[str, Any]) -> RowMapping | None:
    if changes:
        conn.execute(
            update(users).where(users.c.id == user_id).values(**changes, updated_at=utcnow())
        )
    return get_user(conn, user_id)


def user_exists(conn: Connection, user_id: str) -> bool:
    return conn.execute(select(users.c.id).where(users.c.id == user_id)).first() is not None


def active_ingest_key(conn: Connection, key_hash: str) -> RowMapping | None:
    """The key's row with its source's owner, if the key exists and is not revoked."""
    query = (
        select(ingest_keys, traffic_sources.c.user_id.label("owner_id"))
        .join(traffic_sources, traffic_sources.c.id == ingest_keys.c.traffic_source_id)
        .where(ingest_keys.c.key_hash == key_hash, ingest_keys.c.revoked_at.is_(None))
    )
    return conn.execute(query).mappings().first()
