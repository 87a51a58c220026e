"""What the traffic ingest tells other features about each stored record.

Ingest paths (compose, ingest-log, http-traffic, core-log, batch) call ``publish`` inside the
transaction that stores the rows, so that rollups, exceptions and webhook outbox rows commit or
roll back together with the traffic itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection


@dataclass(frozen=True, slots=True)
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


# When a connection carries this key, publish() only collects: the group-commit writer then
# dispatches the events of all jobs of one transaction at once (one rollup upsert per key for a
# whole group instead of one per request), still before that transaction commits.
DEFERRED_EVENTS_KEY = "logharbor.deferred_events"


def publish(conn: Connection, events: Sequence[TrafficEvent]) -> None:
    if not events:
        return
    deferred = conn.info.get(DEFERRED_EVENTS_KEY)
    if deferred is not None:
        deferred.extend(events)
        return
    dispatch(conn, events)


def dispatch(conn: Connection, events: Sequence[TrafficEvent]) -> None:
    """Run every feature's hook on ``events`` in ``conn``'s transaction."""
    if not events:
        return
    # Imported here so that each feature's module graph stays independent of the others.
    from logharbor.alerts import hooks as alert_hooks
    from logharbor.stats import hooks as stats_hooks

    stats_hooks.on_traffic(conn, events)
    alert_hooks.on_traffic(conn, events)
