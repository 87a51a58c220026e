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
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from logharbor.common.errors import ServiceUnavailable
from logharbor.db.engine import Database

log = logging.getLogger("logharbor.writer")

T = TypeVar("T")
Job = Callable[[Connection], Any]


@dataclass
class _Pending:
    job: Job
    future: Future[Any] = field(default_factory=Future)


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
        pending = _Pending(job)
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            raise ServiceUnavailable("Ingest queue is full; retry shortly") from None
        return pending.future

    async def run(self, job: Callable[[Connection], T]) -> T:
        """Run ``job`` in a shared transaction; returns its result once committed."""
        return await asyncio.wrap_future(self.submit_nowait(job))

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
        runnable = [p for p in batch if p.future.set_running_or_notify_cancel()]
        if not runnable:
            return
        try:
            results = self._run_batch(runnable)
        except Exception as exc:
            if not is_transient(exc):
                self._fail(runnable, exc)
                return
            # A deadlock between two processes' groups, or SQLite busy past its timeout: the
            # transaction is gone but the jobs are plain functions of a connection, so the
            # whole group runs again once before anyone is told it failed.
            try:
                results = self._run_batch(runnable)
            except Exception as again:
                self._fail(runnable, ServiceUnavailable("Storage is busy; retry shortly"))
                log.warning("group commit failed twice: %s", again)
                return
        self.transactions += 1
        self.jobs += len(results)
        for pending, ok, value in results:
            if ok:
                pending.future.set_result(value)
            else:
                pending.future.set_exception(value)
        if self._after_commit is not None:
            try:
                self._after_commit()
            except Exception:
                log.exception("after-commit hook failed")

    def _run_batch(self, batch: list[_Pending]) -> list[tuple[_Pending, bool, Any]]:
        """Every job in its own savepoint, the hooks once for all, one commit."""
        from logharbor.traffic import events

        results: list[tuple[_Pending, bool, Any]] = []
        with self.db.write() as conn:
            committed_events: list[Any] = []
            try:
                for pending in batch:
                    job_events: list[Any] = []
                    conn.info[events.DEFERRED_EVENTS_KEY] = job_events
                    results.append(self._run_job(conn, pending))
                    if results[-1][1]:
                        committed_events.extend(job_events)
            finally:
                conn.info.pop(events.DEFERRED_EVENTS_KEY, None)
            events.dispatch(conn, committed_events)
        return results

    @staticmethod
    def _run_job(conn: Connection, pending: _Pending) -> tuple[_Pending, bool, Any]:
        for attempt in (1, 2):
            try:
                with conn.begin_nested():
                    return pending, True, pending.job(conn)
            except Exception as exc:  # the job's own error goes back to its request
                if attempt == 2 or not is_transient(exc):
                    return pending, False, exc
        raise AssertionError("unreachable")

    @staticmethod
    def _fail(batch: list[_Pending], exc: BaseException) -> None:
        log.error("group commit of %d jobs failed: %s", len(batch), exc)
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(exc)


def is_transient(exc: BaseException) -> bool:
    """Errors that a second try of the same transaction may not meet."""
    if isinstance(exc, DBAPIError):
        if getattr(exc.orig, "sqlstate", None) in ("40P01", "40001"):  # deadlock, serialization
            return True
        return "database is locked" in str(exc.orig)
    return False
