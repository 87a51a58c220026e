"""Per-minute rollups maintained at ingest, and the statistics API that reads them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from logharbor.ingest.events import GenerationEvent, TrafficEvent
from logharbor.stats import llm_rollups, rollups


def on_traffic(conn: Connection, events: Sequence[TrafficEvent]) -> None:
    """Fold new records into the per-minute rollups (same transaction as the records)."""
    rollups.record(conn, events)


def on_generations(conn: Connection, events: Sequence[GenerationEvent]) -> None:
    """Fold new LLM calls into the token and cost rollups (same transaction as the calls)."""
    llm_rollups.record(conn, events)
