"""Engines and transactions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from logharbor.db.clickhouse import EventsClient


def normalize_url(url: str) -> str:
    """Accept the URLs people write (``postgresql://``) and pick the driver we ship (psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


log = logging.getLogger("logharbor.db")


def dump_json(value: Any) -> str:
    """JSON columns' serializer: orjson, several times faster than json.dumps on the ingest
    path (compact text; the same value back). json.dumps for what orjson refuses: integers
    beyond 64 bits. (Reading stays with json.loads: orjson turns such integers into floats.)"""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False)


# Write transactions between PASSIVE checkpoints of a process (per transaction, not per page:
# a group commit writes tens of records; SQLite's own default is every 1,000 pages).
CHECKPOINT_EVERY_WRITES = 20


def make_engine(url: str, *, pool_size: int = 20, busy_timeout_ms: int = 30_000) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # No overflow: a connection opened beyond the pool is closed again when returned, and
        # under load that churn (connect + pragmas) costs more than waiting for a pooled one.
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
            json_serializer=dump_json,
        )
        _configure_sqlite(engine, busy_timeout_ms)
        # WAL is a property of the database file: set it once, not on every connection (the
        # pragma takes a lock and would queue behind a busy writer).
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA journal_mode=WAL")  # type: ignore[union-attr]
        finally:
            raw.close()
        return engine
    return create_engine(
        url, pool_size=pool_size, max_overflow=0, pool_pre_ping=True, json_serializer=dump_json
    )


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that we can say BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # NORMAL in WAL mode survives a process crash (kill -9); only power loss can drop the
        # last commits. That is the durability promised to acknowledged writes.
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints are run by Database.write after the write gate is released (see there).
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY when
        # another writer got in between, whatever busy_timeout says. Writers therefore take the
        # write lock up front and queue on busy_timeout instead.
        if connection.get_execution_options().get("logharbor_write"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


class SqliteWriteGate:
    """Queues this machine's SQLite writers in the kernel instead of in SQLite's busy handler.

    SQLite admits one writer at a time; a writer that finds the lock taken sleeps in steps that
    grow to 100 ms, so two worker processes ingesting at once wait far longer than the write
    itself takes (seconds at the tail). An exclusive ``flock`` on a file beside the database wakes
    the next writer the moment the lock is released. A thread lock in front keeps the threads of
    one process in line (flock is per open file, not per thread). The busy handler stays as the
    fallback for writers that do not pass through here (another program, a migration).
    """

    def __init__(self, database_path: str) -> None:
        self._thread_lock = threading.RLock()
        self._fd = os.open(database_path + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)
        self._depth = 0

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._depth += 1

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def close(self) -> None:
        os.close(self._fd)


class Database:
    """The one way routes and workers open transactions: ``with db.write() as conn:``."""

    def __init__(self, engine: Engine, events: EventsClient | None = None) -> None:
        self.engine = engine
        # Where traffic records and core logs live when they are not in this database
        # (``LOGHARBOR_EVENTS_URL``): the read services ask it instead.
        self.events = events
        self.dialect = engine.dialect.name
        database = engine.url.database
        self._writes_since_checkpoint = 0
        self._write_gate: SqliteWriteGate | contextlib.nullcontext[None] = (
            SqliteWriteGate(database)
            if self.dialect == "sqlite" and database and database != ":memory:"
            else contextlib.nullcontext()
        )

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self._write_gate, self.engine.connect() as conn:
            conn = conn.execution_options(logharbor_write=True)
            with conn.begin():
                yield conn
        if isinstance(self._write_gate, SqliteWriteGate):
            self._checkpoint_now_and_then()

    def _checkpoint_now_and_then(self) -> None:
        """Copy the WAL back into the database every so many writes, outside the write gate.

        SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, with
        its fsyncs, while this process still holds the write gate: every other worker waited
        for it. A PASSIVE checkpoint here lets them write meanwhile (it copies what it can
        without blocking writers or readers).
        """
        self._writes_since_checkpoint += 1
        if self._writes_since_checkpoint < CHECKPOINT_EVERY_WRITES:
            return
        self._writes_since_checkpoint = 0
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:
            # The write itself is committed: its caller must not see it as failed (a retried
            # request would store it twice). The next checkpoint copies what this one did not.
            log.warning("WAL checkpoint failed", exc_info=True)

    def fetch_one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One row of a single-statement read, on the driver with no transaction around it.

        For the lookups every request makes (its token's user or ingest key): through a
        SQLAlchemy transaction they cost a BEGIN and a COMMIT plus the statement machinery,
        which together weighed more than the rest of authenticating. ``sql`` uses ``?`` marks.
        Values come back as the driver gives them (no column types applied).
        """
        if self.dialect != "sqlite":
            sql = sql.replace("?", "%s")
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(sql, params)
            row = cursor.fetchone()
            cursor.close()
            return tuple(row) if row is not None else None
        finally:
            raw.close()  # back to the pool, which rolls back what the read opened

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
        if isinstance(self._write_gate, SqliteWriteGate):
            self._write_gate.close()
