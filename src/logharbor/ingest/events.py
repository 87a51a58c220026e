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
from typing import Literal

from sqlalchemy import Connection

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


Subscriber = Callable[[Connection, Sequence[TrafficEvent]], None]


class Subscribers:
    """The listeners of stored records, in the order they were wired."""

    def __init__(self, subscribers: Sequence[Subscriber] = ()) -> None:
        self._subscribers = tuple(subscribers)

    def __call__(self, conn: Connection, events: Sequence[TrafficEvent]) -> None:
        """Deliver one transaction's events to every subscriber, in that transaction."""
        if not events:
            return
        for subscriber in self._subscribers:
            subscriber(conn, events)
