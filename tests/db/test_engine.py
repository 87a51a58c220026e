"""SQLite: writes reach the database file through our own checkpoints, outside the write gate."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from sqlalchemy import insert

from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db import migrate
from logharbor.db.engine import CHECKPOINT_EVERY_WRITES, Database, make_engine
from logharbor.db.tables import users


def _checkpoint_everything(database: Path) -> None:
    with sqlite3.connect(database) as conn:  # the migrations' own writes
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _users_in_file_alone(database: Path, tmp_path: Path) -> int:
    """Users visible in the main database file, ignoring what is still only in the WAL."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(database, copy)
    with sqlite3.connect(copy) as conn:
        return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])


def _add_user(db: Database, n: int) -> None:
    """One write transaction, as every request makes."""
    with db.write() as conn:
        now = utcnow()
        conn.execute(
            insert(users).values(
                id=new_id(),
                email=f"u{n}@example.com",
                name="u",
                password_hash="x",
                utc=0,
                created_at=now,
                updated_at=now,
            )
        )


def test_every_so_many_writes_the_wal_is_checkpointed(tmp_path: Path) -> None:
    database = tmp_path / "logharbor.db"
    engine = make_engine(f"sqlite:///{database}")
    migrate.upgrade(engine)
    db = Database(engine)
    _checkpoint_everything(database)
    for n in range(CHECKPOINT_EVERY_WRITES):
        if n == CHECKPOINT_EVERY_WRITES - 1:
            # No automatic checkpoint so far: everything written is still only in the WAL.
            assert _users_in_file_alone(database, tmp_path) == 0
        _add_user(db, n)
    assert _users_in_file_alone(database, tmp_path) == CHECKPOINT_EVERY_WRITES
    db.dispose()


def test_a_failed_checkpoint_does_not_fail_the_committed_write(tmp_path: Path) -> None:
    from sqlalchemy import event, select

    engine = make_engine(f"sqlite:///{tmp_path / 'logharbor.db'}")
    migrate.upgrade(engine)

    @event.listens_for(engine, "before_cursor_execute")
    def refuse_checkpoints(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if "wal_checkpoint" in statement:
            raise RuntimeError("the disk said no")

    db = Database(engine)
    for n in range(CHECKPOINT_EVERY_WRITES):  # the last one checkpoints, and that fails
        _add_user(db, n)
    with db.read() as conn:
        assert len(conn.execute(select(users.c.id)).all()) == CHECKPOINT_EVERY_WRITES
    db.dispose()
