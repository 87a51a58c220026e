"""The retention job: once per ``retention_interval_minutes`` it deletes what has outlived its
keep, across all processes on one database.

In this order: traffic records past their source's ``retentionDays`` (``traffic/retention.py``)
and the LLM calls and spans of its traces (``llm/retention.py``); delivered or given-up webhook
outbox rows past ``webhook_outbox_keep_days``; then minute and hour rollups past their horizons
(``stats/thinning.py``): the records a user asked to delete come before thinning statistics.
``logharbor prune`` runs the same ``prune`` on demand.

Every process polls; the one whose claim on the due run succeeds (a job lease, ``db/lease.py``)
prunes, renews its claim between batches and schedules the next run when it is done.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import FastAPI

from logharbor.alerts import queries as alert_queries
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db import lease
from logharbor.db.engine import Database
from logharbor.llm.retention import TracesPruned, prune_event_traces, prune_traces
from logharbor.settings import Settings
from logharbor.stats.thinning import thin_rollups
from logharbor.traffic.retention import RecordsPruned, prune_records

log = logging.getLogger("logharbor.retention")

JOB_NAME = "retention"
# A claim outlives several batches between renewals, and a process that died mid-run is
# replaced within minutes.
LEASE = timedelta(minutes=5)
RENEW_AFTER = timedelta(minutes=1)
# Processes look this often whether the run is due, so that a dead holder's run is taken over
# soon after its claim expires rather than an interval later.
MAX_POLL_SECONDS = 60.0


@dataclass
class PruneReport:
    records: RecordsPruned = field(default_factory=RecordsPruned)
    # LLM calls and the other spans of traces, on their source's retention.
    traces: TracesPruned = field(default_factory=TracesPruned)
    # Webhook outbox rows forgotten.
    outbox: int = 0
    # Minute and hour rollup rows past their horizons.
    rollups: int = 0


def _never() -> bool:
    return False


def prune(
    db: Database,
    *,
    batch_size: int = 1000,
    outbox_keep_days: int = 7,
    rollup_days: tuple[int, int] | None = None,
    now: datetime | None = None,
    should_stop: Callable[[], bool] = _never,
) -> PruneReport:
    """One run; ``should_stop`` is asked between batches (shutdown, a lost lease).

    ``rollup_days`` (minute days, hour days) also thins the statistics' rollups."""
    now = now or utcnow()
    report = PruneReport(
        records=prune_records(db, now=now, batch_size=batch_size, should_stop=should_stop)
    )
    for source_id, cutoff in report.records.cutoffs.items():
        if should_stop():
            return report
        prune_traces(db, source_id, cutoff, batch_size, report.traces, should_stop)
    if should_stop():
        return report
    prune_event_traces(db, now, report.traces)
    before = now - timedelta(days=outbox_keep_days)
    while True:
        with db.write() as conn:
            count = alert_queries.prune_outbox(conn, before, batch_size)
        report.outbox += count
        if count < batch_size or should_stop():
            break
    if rollup_days is not None and not should_stop():
        report.rollups = thin_rollups(
            db,
            now=now,
            minute_days=rollup_days[0],
            hour_days=rollup_days[1],
            should_stop=should_stop,
        )
    records, traces = report.records, report.traces
    if records.total or traces.generations or traces.spans or report.outbox or report.rollups:
        log.info(
            "retention: deleted %d traffic, %d core logs, %d requests, %d responses, "
            "%d LLM calls, %d spans, %d outbox, %d rollup rows",
            records.traffic,
            records.core_logs,
            records.requests,
            records.responses,
            traces.generations,
            traces.spans,
            report.outbox,
            report.rollups,
        )
    return report


class RetentionJob:
    """Prunes once per ``retention_interval_minutes`` across all processes on the database.

    A process that dies mid-run stops renewing its lease, and once the lease expires another
    process takes the run over.
    """

    def __init__(
        self, db: Database, settings: Settings, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.interval = timedelta(minutes=settings.retention_interval_minutes)
        self.holder = lease.holder_name()
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

    def run_due(self) -> PruneReport | None:
        """Prune if this period's run is due and nobody holds it; None when there was nothing
        for this process to do."""
        now = self.clock()
        token = new_id()
        with self.db.write() as conn:
            if not lease.claim(conn, JOB_NAME, now, now + LEASE, token, self.holder):
                return None
        held = lease.HeldLease(
            self.db, JOB_NAME, token, duration=LEASE, renew_after=RENEW_AFTER, clock=self.clock
        )
        done = True
        try:
            report = prune(
                self.db,
                batch_size=self.settings.retention_batch_size,
                outbox_keep_days=self.settings.webhook_outbox_keep_days,
                rollup_days=(self.settings.stats_minute_days, self.settings.stats_hour_days),
                now=now,
                should_stop=lambda: self._stop.is_set() or held.lost(),
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
                lease.release(
                    conn,
                    JOB_NAME,
                    token,
                    next_run_at=end + self.interval if done else None,
                    finished_at=end,
                )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """The retention job, started with the app and stopped with it."""
    job = RetentionJob(app.state.db, app.state.settings)
    job.start()
    try:
        yield
    finally:
        await asyncio.to_thread(job.stop)
