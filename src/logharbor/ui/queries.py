"""The web UI's own SQL (its pages otherwise go through the features' route functions).
Functions take a Connection and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from logharbor.db.tables import ui_flashes


def insert_flash(
    conn: Connection, *, flash_id: str, user_id: str, path: str, pad: bytes, expires_at: datetime
) -> None:
    conn.execute(
        insert(ui_flashes).values(
            id=flash_id, user_id=user_id, path=path, pad=pad, expires_at=expires_at
        )
    )


def take_flash(
    conn: Connection, *, flash_id: str, user_id: str, path: str, now: datetime
) -> bytes | None:
    """The pad of an unexpired flash of this user for this page, deleted as it is read.

    The DELETE's row count decides, so two requests racing with the same cookie (a double
    reload, two workers) get the pad once between them.
    """
    where = (
        ui_flashes.c.id == flash_id,
        ui_flashes.c.user_id == user_id,
        ui_flashes.c.path == path,
    )
    row = conn.execute(select(ui_flashes.c.pad, ui_flashes.c.expires_at).where(*where)).first()
    if row is None or conn.execute(delete(ui_flashes).where(*where)).rowcount != 1:
        return None
    return bytes(row.pad) if row.expires_at > now else None


def delete_expired_flashes(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(ui_flashes).where(ui_flashes.c.expires_at <= now)).rowcount
