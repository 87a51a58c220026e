"""What the pipeline tells the rest of the app about each stored record, and who listens.

The pipeline hands a ``TrafficEvent`` per stored record to the subscribers that ``create_app``
wires (rollups, exception grouping, the alert outbox). They run inside the transaction that
stores the records, so their rows commit or roll back with the records themselves. This module
names no subscriber: the features import it, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection

from logharbor.db.writer import WriteTx
from logharbor.ingest.records import ExceptionInfo


@dataclass(slots=True)
class TrafficEvent:
    kind: Literal["traffic", "core"]
    id: str
    traffic_source_id: str
    # For "traffic": the concrete domain/pathname. For "core": domain is None and the pathname
    # is the core pathname (a route template such as /users/:id).
    domain_id: str | None
    domain: str | None
    pathname_id: str
    pathname: str
    method: str
    status: int
    level: str
    elapsed_time: float
    traffic_user_id: str | None
    created_at: datetime
    # A short text of the response body, for exception messages and notifications.
    response_preview: str | None = None
    # The pathname of the route template the collector matched, when it sent one.
    route_pathname_id: str | None = None
    trace_id: str | None = None
    exception: ExceptionInfo | None = None


@dataclass(slots=True)
class GenerationEvent:
    """A stored LLM call, for the token and cost rollups."""

    id: str
    traffic_source_id: str
    created_at: datetime
    provider: str
    model: str
    route: str | None
    prompt_id: str | None
    prompt_version: int | None
    input_tokens: int | None
    output_tokens: int | None
    cached_tokens: int | None
    cost: float | None
    duration_ms: float
    failed: bool
    trace_id: str | None = None


Event = TrafficEvent | GenerationEvent
# A subscriber gets the write transaction: its SQL connection, and ``stage`` for rows bound for
# ClickHouse (the events store's rollups).
Subscriber = Callable[[WriteTx, Sequence[Any]], None]


def in_sql(subscriber: Callable[[Connection, Sequence[Any]], None]) -> Subscriber:
    """A subscriber that only writes SQL rows, given the transaction's connection."""

    def deliver(tx: WriteTx, events: Sequence[Any]) -> None:
        subscriber(tx.conn, events)

    return deliver


class Subscribers:
    """The listeners of stored records, each for one kind of event, in the order wired."""

    def __init__(self, subscribers: Sequence[tuple[type[Any], Subscriber]] = ()) -> None:
        self._subscribers = tuple(subscribers)

    def __call__(self, tx: WriteTx, events: Sequence[Any]) -> None:
        """Deliver one transaction's events to every subscriber of their kind, in that
        transaction."""
        if not events:
            return
        for kind, subscriber in self._subscribers:
            chosen = [event for event in events if type(event) is kind]
            if chosen:
                subscriber(tx, chosen)
