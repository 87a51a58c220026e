"""Background work of the alerts feature, entered in the app lifespan: webhook delivery. Every
process runs it; a lease per webhook decides who sends what, so workers and hosts may share one
database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from logharbor.alerts.dispatcher import Dispatcher
from logharbor.db.engine import Database
from logharbor.settings import Settings


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """Webhook delivery, started with the app and stopped with it."""
    db: Database = app.state.db
    settings: Settings = app.state.settings
    dispatcher = Dispatcher(db, settings)
    dispatcher.start()
    try:
        yield
    finally:
        await asyncio.to_thread(dispatcher.stop)
