from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from logharbor.traffic.events import TrafficEvent


def on_traffic(conn: Connection, events: Sequence[TrafficEvent]) -> None:
    """Group FATAL records into exceptions and queue webhook notifications (same transaction)."""
