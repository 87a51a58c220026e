"""Group commit: many concurrent requests' writes share one transaction.

A single-row commit costs a WAL sync (SQLite) or a durable commit round trip (PostgreSQL), and
SQLite allows one writer at a time anyway. Requests therefore hand their write as a *job* (a
function of a Connection) to this writer; one thread takes every job waiting, runs each inside its
own savepoint (so one bad job cannot sink the others), commits once, and only then resolves each
request's future. An answered request is a committed request: nothing acknowledged is lost if the
process is killed right after the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError

from logharbor.common.errors import ServiceUnavailable
from logharbor.db.engine import Database

log = logging.getLogger("logharbor.writer")

T = TypeVar("T")
Job = Callable[[Connection], Any]


class BulkRunner(Protocol):
    """Runs many requests' items of one kind together (see ``GroupCommitWriter.run_bulk``)."""

    def stage(self, dialect: Dialect, items: list[Any]) -> Any:
        """Optional: the work that needs no database, done before the write lock is taken."""

    def __call__(self, conn: Connection, items: list[Any], staged: Any = None) -> list[Any]:
        """One outcome per item, in order: the item's result or the LogHarborError to answer
        it with. ``staged`` is what ``stage`` returned for these very items, if anything.
        Raising means "this group could not be stored together": each item then runs alone."""


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


class GroupCommitWriter:
    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 500,
        max_queue: int = 20_000,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._after_commit = after_commit
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

    def submit_nowait(self, job: Callable[[Connection], T]) -> Future[T]:
        future: Future[T] = Future()
        self._submit(_Pending(job, future))
        return future

    def _submit(self, pending: _Pending) -> None:
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            raise ServiceUnavailable("Ingest queue is full; retry shortly") from None

    async def run(self, job: Callable[[Connection], T]) -> T:
        """Run ``job`` in a shared transaction; returns its result once committed."""
        return await self._wait(job, None, None)  # type: ignore[no-any-return]

    async def run_bulk(self, runner: BulkRunner, item: Any) -> Any:
        """Hand ``item`` to ``runner`` together with the other items of its kind in the group.

        One call per kind and group instead of one job per request: a hundred single-record
        requests become one executemany per table. The result is the item's own outcome.
        """
        return await self._wait(None, runner, item)

    async def _wait(self, job: Job | None, bulk: BulkRunner | None, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._submit(_Pending(job, future, loop, bulk, item))
        return await future

    def run_sync(self, job: Callable[[Connection], T], timeout: float | None = None) -> T:
        return self.submit_nowait(job).result(timeout)

    @property
    def is_full(self) -> bool:
        return self._queue.full()

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
        try:
            results = self._attempt(runnable)
        except Exception as exc:
            if not is_transient(exc):
                self._fail(runnable, exc)
                return
            # A deadlock between two processes' groups, or SQLite busy past its timeout: the
            # transaction is gone but the jobs are plain functions of a connection, so the
            # whole group runs again once before anyone is told it failed.
            try:
                results = self._attempt(runnable)
            except Exception as again:
                self._fail(runnable, ServiceUnavailable("Storage is busy; retry shortly"))
                log.warning("group commit failed twice: %s", again)
                return
        self.transactions += 1
        self.jobs += len(results)
        _deliver(results)
        if self._after_commit is not None:
            try:
                self._after_commit()
            except Exception:
                log.exception("after-commit hook failed")

    def _attempt(self, batch: list[_Pending]) -> list[tuple[_Pending, bool, Any]]:
        try:
            return self._run_batch(batch, careful=False)
        except _BulkFailed as failed:
            log.info("a bulk failed as a whole, storing item by item: %s", failed.__cause__)
            return self._run_batch(batch, careful=True)

    def _run_batch(self, batch: list[_Pending], careful: bool) -> list[tuple[_Pending, bool, Any]]:
        """Every job in its own savepoint, the bulks, the hooks once for all, one commit."""
        from logharbor.traffic import events

        results: list[tuple[_Pending, bool, Any]] = []
        bulks: dict[BulkRunner, list[_Pending]] = {}
        for pending in batch:
            if pending.bulk is not None:
                bulks.setdefault(pending.bulk, []).append(pending)
        # Staged before the transaction: on SQLite every process queues for one write lock, so
        # whatever needs no database is done before taking it (and while another holds it).
        staged = (
            {}
            if careful
            else {
                runner: _stage(runner, self.db.engine.dialect, group)
                for runner, group in bulks.items()
            }
        )
        with self.db.write() as conn:
            committed_events: list[Any] = []
            try:
                for pending in batch:
                    if pending.job is not None:
                        results.append(_run_one(conn, pending, pending.job, committed_events))
                for runner, group in bulks.items():
                    ready = staged.get(runner, _UNSTAGED)
                    results.extend(_run_bulk(conn, runner, group, committed_events, ready))
            finally:
                conn.info.pop(events.DEFERRED_EVENTS_KEY, None)
            events.dispatch(conn, committed_events)
        return results

    @staticmethod
    def _fail(batch: list[_Pending], exc: BaseException) -> None:
        log.error("group commit of %d jobs failed: %s", len(batch), exc)
        _deliver([(pending, False, exc) for pending in batch])


# A bulk that runs carefully: no staged work, each item alone in a savepoint.
_UNSTAGED = object()


def _stage(runner: BulkRunner, dialect: Dialect, group: list[_Pending]) -> Any:
    """What ``runner.stage`` prepares (None without one); _UNSTAGED if staging itself failed."""
    stage = getattr(runner, "stage", None)  # optional: a plain function is a runner too
    if stage is None:
        return None
    try:
        return stage(dialect, [pending.item for pending in group])
    except Exception:
        log.exception("staging %d items failed; storing them item by item", len(group))
        return _UNSTAGED


def _run_bulk(
    conn: Connection,
    runner: BulkRunner,
    group: list[_Pending],
    events_out: list[Any],
    staged: Any,
) -> list[tuple[_Pending, bool, Any]]:
    """The whole group at once, with no savepoint (they cost statements inside the write lock,
    and a bulk rarely fails); a failure rolls the transaction back (``_BulkFailed``) and the
    group runs again carefully (``staged`` is _UNSTAGED then): each item in a savepoint."""
    from logharbor.traffic import events

    if staged is _UNSTAGED:
        return [
            _run_one(conn, pending, _item_job(runner, pending.item), events_out)
            for pending in group
        ]
    found: list[Any] = []
    conn.info[events.DEFERRED_EVENTS_KEY] = found
    items = [pending.item for pending in group]
    try:
        values = runner(conn, items) if staged is None else runner(conn, items, staged)
    except Exception as exc:
        if is_transient(exc):
            raise  # the whole transaction is gone: _commit runs the group again
        raise _BulkFailed() from exc
    events_out.extend(found)
    return [
        (pending, _succeeded(value), value) for pending, value in zip(group, values, strict=True)
    ]


def _item_job(runner: BulkRunner, item: Any) -> Job:
    """One bulk item as a job of its own, for the careful item-by-item run."""
    return lambda conn: runner(conn, [item])[0]


def _run_one(
    conn: Connection, pending: _Pending, call: Job, events_out: list[Any]
) -> tuple[_Pending, bool, Any]:
    """One job (or one bulk item) in its own savepoint, tried again once on a transient error;
    its error, raised or returned, goes back to its own request alone."""
    from logharbor.traffic import events

    for attempt in (1, 2):
        found: list[Any] = []
        conn.info[events.DEFERRED_EVENTS_KEY] = found
        try:
            with conn.begin_nested():
                value = call(conn)
        except Exception as exc:
            if attempt == 2 or not is_transient(exc):
                return pending, False, exc
            continue
        if _succeeded(value):
            events_out.extend(found)
        return pending, _succeeded(value), value
    raise AssertionError("unreachable")


def _succeeded(value: Any) -> bool:
    from logharbor.common.errors import LogHarborError

    return not isinstance(value, LogHarborError)


class _BulkFailed(Exception):
    """A bulk runner raised while running without savepoints: run the group carefully."""


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
