"""Group commit: many concurrent requests' writes share one transaction.

A single-row commit costs a WAL sync (SQLite) or a durable commit round trip (PostgreSQL), and
SQLite allows one writer at a time anyway. Requests therefore hand their write to this writer:
one thread takes everything waiting, runs it in one transaction, commits once, and only then
resolves each request's future. An answered request is a committed request: nothing
acknowledged is lost if the process is killed right after the answer.

Two kinds of work come in:

- a *job*, a function of a ``WriteTx``, run in its own savepoint so that one bad job cannot
  sink the others;
- a *bulk item*, handed with every other item of the same ``BulkRunner`` to one call of that
  runner (``run_bulk``): a hundred single-record requests become one insert per table.

A group runs optimistically first: bulk runners write without savepoints, because a savepoint
makes SQLite copy every page the inserts touch to a sub-journal (a 500-row insert took 35-40 %
longer inside one, measured with sqlite3 on the AMD EPYC VM of bench/RESULTS.md, 2026-12-04).
When a runner raises, the whole transaction rolls back, so nothing is half-written, and the
group runs again *carefully*: each runner then keeps every item all or nothing on its own.

What the work publishes on its ``WriteTx`` (the ingest pipeline's events) goes, once per
transaction and before the commit, to the ``on_events`` callable the app wired.

Rows bound for a second store (ClickHouse, when events live there) are staged on the ``WriteTx``
the same way and written last, one multi-row insert per table for the whole group, before the
SQL commit: if that insert fails the SQL transaction rolls back with it, so an answer still
means stored everywhere. (The one window left: the insert succeeded and the SQL commit then
failed. The client was answered 503, and its retry finds the records stored.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from logharbor.common.errors import LogHarborError, ServiceUnavailable
from logharbor.db.engine import Database

log = logging.getLogger("logharbor.writer")

T = TypeVar("T")
EventSink = Callable[["WriteTx", Sequence[Any]], None]


class RowSink(Protocol):
    """A second store's writer: ``write`` inserts every row staged for ``table`` at once."""

    def write(self, table: str, rows: list[dict[str, Any]]) -> None: ...


class WriteTx:
    """A piece of work's view of the group transaction: the connection, what it published, and
    the rows it staged for a second store.

    Events and rows of a part (``part()``) reach the transaction only when the part is adopted,
    so that the work rolled back to its savepoint is dropped with its rows.
    """

    __slots__ = ("conn", "events", "parent", "staged")

    def __init__(self, conn: Connection, parent: WriteTx | None = None) -> None:
        self.conn = conn
        self.parent = parent
        self.events: list[Any] = []
        self.staged: list[tuple[RowSink, str, list[dict[str, Any]]]] = []

    def publish(self, events: Iterable[Any]) -> None:
        self.events.extend(events)

    def stage(self, sink: RowSink, table: str, rows: list[dict[str, Any]]) -> None:
        """Have ``rows`` inserted into ``sink``'s ``table`` when the transaction commits."""
        if rows:
            self.staged.append((sink, table, rows))

    def part(self) -> WriteTx:
        return WriteTx(self.conn, self)

    def staged_rows(self, sink: RowSink, table: str) -> Iterator[dict[str, Any]]:
        """Rows staged for ``sink``'s ``table`` and not inserted yet, by this work or by work
        adopted before it: what a lookup in the second store cannot see yet."""
        tx: WriteTx | None = self
        while tx is not None:
            for staged_sink, staged_table, rows in tx.staged:
                if staged_sink is sink and staged_table == table:
                    yield from rows
            tx = tx.parent

    def adopt(self, part: WriteTx) -> None:
        self.events.extend(part.events)
        self.staged.extend(part.staged)

    def flush_staged(self) -> None:
        """One insert per (sink, table) for everything the group staged."""
        merged: dict[tuple[int, str], tuple[RowSink, list[dict[str, Any]]]] = {}
        for sink, table, rows in self.staged:
            merged.setdefault((id(sink), table), (sink, []))[1].extend(rows)
        self.staged = []
        for (_sink_id, table), (sink, rows) in merged.items():
            sink.write(table, rows)


Job = Callable[[WriteTx], Any]


class BulkRunner(Protocol):
    """Runs many requests' items of one kind together (see ``GroupCommitWriter.run_bulk``).

    A runner may also have ``prepare(dialect, items)``: the writer calls it before it takes the
    write lock and hands what it returned to the call (``prepared``), so that the work that
    needs no database is not done while every other writer waits.
    """

    def __call__(
        self, tx: WriteTx, items: list[Any], prepared: Any = None, careful: bool = False
    ) -> list[Any]:
        """One outcome per item, in order: the item's result or the LogHarborError to answer
        it with.

        Not ``careful`` (a group's first run), the runner may write its items together and
        raise when any of them fails: the writer rolls the whole transaction back and runs the
        group again, careful. Careful, what it writes must be all or nothing per item (its own
        savepoints); an exception it raises then fails every item of the call, and the writer
        rolls back what the call wrote. A transient error retries the whole group either way."""


@dataclass(slots=True)
class _Pending:
    job: Job | None
    # An asyncio future of ``loop`` for async callers, a concurrent one for threads.
    future: asyncio.Future[Any] | Future[Any]
    loop: asyncio.AbstractEventLoop | None = None
    bulk: BulkRunner | None = None
    item: Any = None

    def cancelled(self) -> bool:
        return self.future.cancelled()


def _no_events(tx: WriteTx, events: Sequence[Any]) -> None:
    del tx, events


class GroupCommitWriter:
    def __init__(
        self,
        db: Database,
        *,
        on_events: EventSink = _no_events,
        max_batch: int = 500,
        max_queue: int = 20_000,
    ) -> None:
        self.db = db
        self.on_events = on_events
        self.max_batch = max_batch
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self.transactions = 0
        self.jobs = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="logharbor-writer", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Finish every job already submitted, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    async def __aenter__(self) -> GroupCommitWriter:
        self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await asyncio.to_thread(self.close)

    # -- submitting ----------------------------------------------------------------------------

    def submit_nowait(self, job: Callable[[WriteTx], T]) -> Future[T]:
        future: Future[T] = Future()
        self._submit(_Pending(job, future))
        return future

    def _submit(self, pending: _Pending) -> None:
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            raise ServiceUnavailable("Ingest queue is full; retry shortly") from None

    async def run(self, job: Callable[[WriteTx], T]) -> T:
        """Run ``job`` in a shared transaction; returns its result once committed."""
        return await self._wait(job, None, None)  # type: ignore[no-any-return]

    async def run_bulk(self, runner: BulkRunner, item: Any) -> Any:
        """Hand ``item`` to ``runner`` together with the other items of its kind in the group.
        The result is the item's own outcome."""
        return await self._wait(None, runner, item)

    async def _wait(self, job: Job | None, bulk: BulkRunner | None, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._submit(_Pending(job, future, loop, bulk, item))
        return await future

    def run_sync(self, job: Callable[[WriteTx], T], timeout: float | None = None) -> T:
        return self.submit_nowait(job).result(timeout)

    @property
    def waiting(self) -> int:
        """How much submitted work has not been taken into a transaction yet."""
        return self._queue.qsize()

    # -- the writer thread -----------------------------------------------------------------------

    def _take_batch(self) -> tuple[list[_Pending], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        stopping = False
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stopping = True
                break
            batch.append(item)
        return batch, stopping

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._take_batch()
            if batch:
                self._commit(batch)
        # Drain anything that raced in after the stop marker.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._commit([item])

    def _commit(self, batch: list[_Pending]) -> None:
        # A request whose client went away before its turn is not stored.
        runnable = [p for p in batch if not p.cancelled()]
        if not runnable:
            return
        careful = retried = False
        while True:
            try:
                results = self._run_batch(runnable, careful=careful)
                break
            except Exception as exc:
                # The transaction is gone, and with it everything the group wrote: the work is
                # plain functions of a connection, so it can run again. A deadlock between two
                # processes' groups, or SQLite busy past its timeout, gets one more try as it
                # was; anything else that a bulk runner raised gets the careful run.
                if is_transient(exc) and not retried:
                    retried = True
                    continue
                if not careful and not is_transient(exc):
                    careful = True
                    continue
                if is_transient(exc):
                    log.warning("group commit failed twice: %s", exc)
                    exc = ServiceUnavailable("Storage is busy; retry shortly")
                self._fail(runnable, exc)
                return
        self.transactions += 1
        self.jobs += len(results)
        _deliver(results)

    def _run_batch(
        self, batch: list[_Pending], *, careful: bool
    ) -> list[tuple[_Pending, bool, Any]]:
        """Every job in its own savepoint, each runner once for its items, one commit."""
        results: list[tuple[_Pending, bool, Any]] = []
        bulks: dict[BulkRunner, list[_Pending]] = {}
        for pending in batch:
            if pending.bulk is not None:
                bulks.setdefault(pending.bulk, []).append(pending)
        prepared = {
            runner: None if careful else _prepare(runner, self.db, group)
            for runner, group in bulks.items()
        }
        with self.db.write() as conn:
            tx = WriteTx(conn)
            for pending in batch:
                if pending.job is not None:
                    results.append(_run_job(tx, pending, pending.job))
            for runner, group in bulks.items():
                results.extend(_run_bulk(tx, runner, group, prepared[runner], careful=careful))
            self.on_events(tx, tx.events)
            tx.flush_staged()
        return results

    @staticmethod
    def _fail(batch: list[_Pending], exc: BaseException) -> None:
        log.error("group commit of %d jobs failed: %s", len(batch), exc)
        _deliver([(pending, False, exc) for pending in batch])


def _prepare(runner: BulkRunner, db: Database, group: list[_Pending]) -> Any:
    prepare = getattr(runner, "prepare", None)  # optional: a plain function is a runner too
    if prepare is None:
        return None
    try:
        return prepare(db.engine.dialect, [pending.item for pending in group])
    except Exception:
        # Only an optimization: the runner does the same work in the transaction.
        log.exception("preparing %d items failed", len(group))
        return None


def _run_bulk(
    tx: WriteTx, runner: BulkRunner, group: list[_Pending], prepared: Any, *, careful: bool
) -> list[tuple[_Pending, bool, Any]]:
    part = tx.part()
    items = [pending.item for pending in group]
    if not careful:  # what it raises rolls the transaction back (see BulkRunner)
        values = runner(part, items, prepared)
    else:
        try:
            with tx.conn.begin_nested():
                values = runner(part, items, None, True)
        except Exception as exc:
            if is_transient(exc):
                raise  # the whole transaction is gone: _commit runs the group again
            log.exception("a bulk of %d items failed", len(group))
            return [(pending, False, exc) for pending in group]
    tx.adopt(part)
    return [
        (pending, _succeeded(value), value) for pending, value in zip(group, values, strict=True)
    ]


def _run_job(tx: WriteTx, pending: _Pending, job: Job) -> tuple[_Pending, bool, Any]:
    """One job in its own savepoint, tried again once on a transient error; its error, raised
    or returned, goes back to its own request alone."""
    for attempt in (1, 2):
        part = tx.part()
        try:
            with tx.conn.begin_nested():
                value = job(part)
        except Exception as exc:
            if attempt == 2 or not is_transient(exc):
                return pending, False, exc
            continue
        if _succeeded(value):
            tx.adopt(part)
        return pending, _succeeded(value), value
    raise AssertionError("unreachable")


def _succeeded(value: Any) -> bool:
    return not isinstance(value, LogHarborError)


def _deliver(results: list[tuple[_Pending, bool, Any]]) -> None:
    """Resolve every waiter: one wake-up per event loop for the whole group, not one each."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Pending, bool, Any]]] = {}
    for result in results:
        loop = result[0].loop
        if loop is None:
            _resolve([result])
        else:
            by_loop.setdefault(loop, []).append(result)
    for loop, group in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, group)


def _resolve(results: list[tuple[_Pending, bool, Any]]) -> None:
    for pending, ok, value in results:
        if pending.future.done():  # cancelled meanwhile
            continue
        if ok:
            pending.future.set_result(value)
        else:
            pending.future.set_exception(value)


def is_transient(exc: BaseException) -> bool:
    """Errors that a second try of the same transaction may not meet."""
    if isinstance(exc, DBAPIError):
        if getattr(exc.orig, "sqlstate", None) in ("40P01", "40001"):  # deadlock, serialization
            return True
        return "database is locked" in str(exc.orig)
    return False
