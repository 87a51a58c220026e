"""Background work of the alerts feature, entered in the app lifespan: webhook delivery and the
periodic retention job. Every process runs both; the database decides who does what (leases for
delivery; retention deletes are idempotent), so workers and hosts may share one database."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from logharbor.alerts import retention
from logharbor.alerts.dispatcher import Dispatcher
from logharbor.db.engine import Database
from logharbor.settings import Settings

log = logging.getLogger("logharbor.alerts")


class RetentionJob:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
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
        interval = self.settings.retention_interval_minutes * 60
        # The first run waits one interval: a restart loop must not turn into a delete loop,
        # and start-up stays fast.
        while not self._stop.wait(interval):
            try:
                retention.prune(
                    self.db,
                    batch_size=self.settings.retention_batch_size,
                    outbox_keep_days=self.settings.webhook_outbox_keep_days,
                    should_stop=self._stop.is_set,
                )
            except Exception:
                log.exception("retention job failed")


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """Background work of this feature (webhook delivery, retention), started with the app."""
    db: Database = app.state.db
    settings: Settings = app.state.settings
    dispatcher = Dispatcher(db, settings)
    job = RetentionJob(db, settings)
    app.state.alert_dispatcher = dispatcher
    dispatcher.start()
    job.start()
    try:
        yield
    finally:
        await asyncio.to_thread(job.stop)
        await asyncio.to_thread(dispatcher.stop)
