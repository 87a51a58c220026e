"""Per-minute rollups maintained at ingest, and the statistics API that reads them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from logharbor.ingest.events import TrafficEvent
from logharbor.stats import rollups


def on_traffic(conn: Connection, events: Sequence[TrafficEvent]) -> None:
    """Fold new records into the per-minute rollups (same transaction as the records)."""
    rollups.record(conn, events)
