from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError

from logharbor.common.errors import Conflict
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database
from logharbor.db.tables import users


def create_user(
    conn: Connection, *, email: str, name: str, password_hash: str, utc: int = 0
) -> RowMapping:
    now = utcnow()
    row: dict[str, Any] = {
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


# --- per-request lookups (driver level, no transaction; see Database.fetch_one) -----------------


def user_exists_now(db: Database, user_id: str) -> bool:
    return db.fetch_one("SELECT 1 FROM users WHERE id = ?", (user_id,)) is not None


def active_ingest_key_now(db: Database, key_hash: str) -> dict[str, Any] | None:
    """The key's id, source, last use and the source's owner, if it exists and is not revoked."""
    row = db.fetch_one(
        "SELECT k.id, k.traffic_source_id, k.last_used_at, s.user_id FROM ingest_keys k "
        "JOIN traffic_sources s ON s.id = k.traffic_source_id "
        "WHERE k.key_hash = ? AND k.revoked_at IS NULL",
        (key_hash,),
    )
    if row is None:
        return None
    key_id, source_id, last_used_at, owner_id = row
    if isinstance(last_used_at, str):  # SQLite hands back the stored naive-UTC text
        last_used_at = datetime.fromisoformat(last_used_at).replace(tzinfo=UTC)
    return {
        "id": key_id,
        "traffic_source_id": source_id,
        "last_used_at": last_used_at,
        "owner_id": owner_id,
    }
