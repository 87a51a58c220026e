"""Background work of the alerts feature, entered in the app lifespan: webhook delivery and the
periodic retention job. Every process runs both; the database decides who does what (a lease per
webhook for delivery, a lease per period for retention), so workers and hosts may share one
database."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from fastapi import FastAPI

from logharbor.alerts import queries, retention
from logharbor.alerts.dispatcher import Dispatcher
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database
from logharbor.settings import Settings

log = logging.getLogger("logharbor.alerts")

RETENTION_JOB = "retention"
# A claim outlives several batches between renewals, and a process that died mid-run is
# replaced within minutes.
LEASE = timedelta(minutes=5)
RENEW_AFTER = timedelta(minutes=1)
# Processes look this often whether the run is due, so that a dead holder's run is taken over
# soon after its claim expires rather than an interval later.
MAX_POLL_SECONDS = 60.0


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


class _Claim:
    """Our claim on a run, renewed between batches; ``lost()`` once another process has it."""

    def __init__(self, db: Database, token: str, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.token = token
        self.clock = clock
        self.renewed_at = clock()
        self._lost = False

    def lost(self) -> bool:
        now = self.clock()
        if not self._lost and now - self.renewed_at >= RENEW_AFTER:
            with self.db.write() as conn:
                self._lost = not queries.renew_job(conn, RETENTION_JOB, self.token, now + LEASE)
            self.renewed_at = now
            if self._lost:
                log.warning("retention run taken over by another process; stopping this one")
        return self._lost


class RetentionJob:
    """Prunes once per ``retention_interval_minutes`` across all processes on the database.

    Each process polls; the one whose claim on the due run succeeds (``job_leases``) prunes,
    renews its claim between batches and schedules the next run when it is done. A process that
    dies mid-run stops renewing, and once its claim expires another process takes the run over.
    Clocks of the hosts are compared, as for webhook leases, so they should be roughly in sync.
    """

    def __init__(
        self, db: Database, settings: Settings, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.interval = timedelta(minutes=settings.retention_interval_minutes)
        self.holder = _holder()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="logharbor-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        poll = min(self.interval.total_seconds(), MAX_POLL_SECONDS)
        # The first look waits one poll, so that start-up stays fast.
        while not self._stop.wait(poll):
            try:
                self.run_due()
            except Exception:
                log.exception("retention job failed")

    def run_due(self) -> retention.PruneReport | None:
        """Prune if this period's run is due and nobody holds it; None when there was nothing
        for this process to do."""
        now = self.clock()
        token = new_id()
        with self.db.write() as conn:
            if not queries.claim_job(conn, RETENTION_JOB, now, now + LEASE, token, self.holder):
                return None
        claim = _Claim(self.db, token, self.clock)
        done = True
        try:
            report = retention.prune(
                self.db,
                batch_size=self.settings.retention_batch_size,
                outbox_keep_days=self.settings.webhook_outbox_keep_days,
                rollup_days=(self.settings.stats_minute_days, self.settings.stats_hour_days),
                now=now,
                should_stop=lambda: self._stop.is_set() or claim.lost(),
            )
            # Interrupted by a shutdown, the run stays due so that another process resumes it
            # now. A failed run counts as done: retrying a persistent failure every poll would
            # only add load; the next period tries again.
            done = not self._stop.is_set()
            return report
        finally:
            end = self.clock()
            with self.db.write() as conn:
                # Matches nothing when the claim was lost: the new holder schedules the next run.
                queries.release_job(
                    conn,
                    RETENTION_JOB,
                    token,
                    next_run_at=end + self.interval if done else None,
                    finished_at=end,
                )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """Background work of this feature (webhook delivery, retention), started with the app."""
    db: Database = app.state.db
    settings: Settings = app.state.settings
    dispatcher = Dispatcher(db, settings)
    job = RetentionJob(db, settings)
    dispatcher.start()
    job.start()
    try:
        yield
    finally:
        await asyncio.to_thread(job.stop)
        await asyncio.to_thread(dispatcher.stop)
