"""Backups of the embedded SQLite store taken while it serves, and restoring one.

A file copy of a live WAL database can miss the commits still in the ``-wal`` file or catch a
page half-written. SQLite's online backup API copies through SQLite's own locking; it is run
here from a connection that holds one read transaction for the whole copy, so that every step
reads the same WAL snapshot: writers keep committing meanwhile (WAL readers block nobody), and
everything committed before the snapshot opened is in the copy. (Without that transaction the
API restarts whenever another process writes, and under steady ingest it would never finish.)

Restore puts a backup in place of the database only when no server uses it. Every serving
process holds a shared ``flock`` on ``<database>.serving`` for as long as it runs (``presence``,
taken by the app's lifespan and by ``logharbor serve`` itself, so that several workers and
their restarts all count); restore takes the lock exclusively, which fails while any server
holds it, and keeps it until the new database is in place so that no server starts meanwhile.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from logharbor.db import migrate
from logharbor.db.engine import make_engine, normalize_url

# Pages per backup step: small enough for a live progress bar, large enough that the per-step
# overhead does not show (4 MiB at SQLite's default 4 KiB page).
PAGES_PER_STEP = 1024

Progress = Callable[[int, int], None]  # (pages copied, pages in all)


class BackupError(Exception):
    """A backup or restore refused, with the reason for the person at the terminal."""


class ServerRunning(BackupError):
    pass


def _no_progress(done: int, total: int) -> None:
    del done, total


def sqlite_path(database_url: str) -> Path:
    """The file of an embedded store; BackupError for PostgreSQL (and in-memory) URLs."""
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            "backup and restore are for the embedded SQLite store; for PostgreSQL use "
            "pg_dump and pg_restore (see the README, 'Backups')"
        )
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory database has nothing to back up")
    return Path(url.database).resolve()


# --- who is serving ---------------------------------------------------------------------------


def _lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".serving")


@contextlib.contextmanager
def presence(database_url: str) -> Iterator[None]:
    """Held by a serving process for as long as it serves this database (SQLite only)."""
    try:
        database = sqlite_path(database_url)
    except BackupError:
        yield  # PostgreSQL: restore is pg_restore's business, not ours
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(_lock_path(database), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                f"{database} is being restored; start the server when the restore is done"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def sole_user(database: Path) -> Iterator[None]:
    fd = os.open(_lock_path(database), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServerRunning(
                f"a LogHarbor server is running on {database}; stop it before restoring"
            ) from None
        yield
    finally:
        os.close(fd)


# --- backup -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackupReport:
    path: Path
    pages: int
    bytes: int
    revision: str | None


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    uri = f"{path.as_uri()}?mode=ro" if read_only else path.as_uri()
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return str(row[0]) if row else None


def _copy(
    source: sqlite3.Connection,
    target_path: Path,
    progress: Progress,
    pages_per_step: int = PAGES_PER_STEP,
) -> tuple[int, str | None]:
    """Copy ``source`` into a new file at ``target_path`` (one snapshot); (pages, revision)."""
    pages = [0]

    def step(_status: int, remaining: int, total: int) -> None:
        pages[0] = total
        progress(total - remaining, total)

    source.execute("BEGIN")
    try:
        # The snapshot opens with the first read; the copy and the revision both come from it.
        revision = _revision(source)
        target = sqlite3.connect(target_path, isolation_level=None)
        try:
            source.backup(target, pages=pages_per_step, progress=step)
            # One self-contained file: no -wal beside it to lose in a copy.
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
    finally:
        source.execute("COMMIT")
    return pages[0], revision


def backup(
    database: Path,
    target: Path,
    *,
    overwrite: bool = False,
    progress: Progress = _no_progress,
    pages_per_step: int = PAGES_PER_STEP,
) -> BackupReport:
    """Copy the live database at ``database`` to ``target`` (checked before it is kept)."""
    target = target.resolve()
    if not database.exists():
        raise BackupError(f"no database at {database}")
    if target == database:
        raise BackupError("the backup file must not be the database itself")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists; pass --overwrite or choose another name")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    source = _connect(database)
    try:
        pages, revision = _copy(source, partial, progress, pages_per_step)
        _check(partial)
        os.replace(partial, target)  # a failed run never leaves a half-written FILE
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    return BackupReport(target, pages, target.stat().st_size, revision)


def _check(path: Path) -> None:
    conn = _connect(path, read_only=True)
    try:
        result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database ({exc})") from None
    finally:
        conn.close()
    if result != ["ok"]:
        raise BackupError(f"{path} fails SQLite's integrity check: {'; '.join(result[:5])}")


# --- restore ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestoreReport:
    from_revision: str
    to_revision: str | None
    previous: Path | None  # where the database that was replaced was kept


def backup_revision(path: Path) -> str:
    """The schema revision of a backup file, after checking it is sound and not too new."""
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    _check(path)
    conn = _connect(path, read_only=True)
    try:
        revision = _revision(conn)
    finally:
        conn.close()
    if revision is None:
        raise BackupError(f"{path} is not a LogHarbor backup (it has no schema revision)")
    known = migrate.known_revisions()
    if revision not in known:
        raise BackupError(
            f"{path} was made by a newer LogHarbor (schema revision {revision}; this one knows "
            f"up to {migrate.head_revision()}); restore it with that version or a later one"
        )
    return revision


def restore(
    backup_file: Path, database: Path, *, progress: Progress = _no_progress
) -> RestoreReport:
    """Put ``backup_file`` in place of ``database``, migrated to this code's schema.

    The current database (if any) is first copied aside to ``<database>.before-restore-<time>``.
    The backup is migrated in a scratch copy, so a migration that fails changes nothing.
    """
    from_revision = backup_revision(backup_file.resolve())
    database.parent.mkdir(parents=True, exist_ok=True)
    with sole_user(database):
        scratch = database.with_name(database.name + ".restoring")
        for leftover in (scratch, *_sidecars(scratch)):
            leftover.unlink(missing_ok=True)
        try:
            source = _connect(backup_file.resolve(), read_only=True)
            try:
                _copy(source, scratch, progress)
            finally:
                source.close()
            engine = make_engine(f"sqlite:///{scratch}")
            try:
                migrate.upgrade(engine)
                to_revision = migrate.current_revision(engine)
            finally:
                engine.dispose()  # the last connection to close checkpoints the WAL
            _check(scratch)
            previous = None
            if database.exists():
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
                previous = database.with_name(f"{database.name}.before-restore-{stamp}")
                current = _connect(database)
                try:
                    _copy(current, previous, _no_progress)
                finally:
                    current.close()
            # Into the database through SQLite (not a rename): its -wal and -shm files stay
            # consistent with the new content, whatever state they were left in.
            source = _connect(scratch)
            target = _connect(database)
            try:
                source.backup(target)
                target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                target.close()
                source.close()
        finally:
            for leftover in (scratch, *_sidecars(scratch)):
                leftover.unlink(missing_ok=True)
    return RestoreReport(from_revision, to_revision, previous)


def _sidecars(path: Path) -> tuple[Path, ...]:
    return tuple(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", ".writelock"))
