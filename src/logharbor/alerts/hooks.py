"""The ingest side of alerts: runs inside every traffic-ingest transaction (``ingest.events``).

Work here commits or rolls back with the traffic rows themselves, which is what makes the outbox
durable: an acknowledged record has its notification queued, and a failed ingest queues nothing.
It is the hot path, so it costs one indexed query per batch when no webhook exists, one upsert
per distinct FATAL fingerprint, and one ``executemany`` for the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from logharbor.alerts import fingerprint, queries
from logharbor.common.ids import new_id
from logharbor.common.timestamps import iso, utcnow
from logharbor.ingest.events import TrafficEvent
from logharbor.ingest.normalize import exception_json

LEVEL_RANK = {"INFO": 0, "WARNING": 1, "FATAL": 2}
PREVIEW_CHARS = 500


def sample_of(event: TrafficEvent, route: str, message: str) -> dict[str, Any]:
    preview = event.response_preview
    return {
        "kind": event.kind,
        "recordId": event.id,
        "domain": event.domain,
        "pathname": event.pathname,
        "route": route,
        "method": event.method,
        "status": event.status,
        "level": event.level,
        "elapsedTime": event.elapsed_time,
        "trafficUserId": event.traffic_user_id,
        "message": message,
        "responsePreview": preview[:PREVIEW_CHARS] if preview else preview,
        "traceId": event.trace_id,
        # The exception page shows its stack trace.
        "exception": exception_json(event.exception),
        "createdAt": iso(event.created_at),
    }


def matches(webhook: RowMapping, event: TrafficEvent) -> bool:
    if LEVEL_RANK.get(event.level, 0) < LEVEL_RANK.get(webhook["level"], 0):
        return False
    prefix = webhook["pathname_prefix"]
    if prefix and not event.pathname.startswith(prefix):
        return False
    if webhook["status_min"] is not None and event.status < webhook["status_min"]:
        return False
    return webhook["status_max"] is None or event.status <= webhook["status_max"]


@dataclass
class _Group:
    """Events of one fingerprint within this batch."""

    key: str
    route: str
    message: str
    latest: TrafficEvent
    first_at: datetime
    last_at: datetime
    count: int = 0
    # The FATAL events among them (a client may send a level that its status would not give).
    fatal: list[TrafficEvent] = field(default_factory=list)
    exception: tuple[str, str] | None = None
    sample: dict[str, Any] = field(default_factory=dict)

    def add(self, event: TrafficEvent) -> None:
        self.count += 1
        if event.created_at >= self.last_at:
            self.latest = event
            self.last_at = event.created_at
        self.first_at = min(self.first_at, event.created_at)
        if event.level == "FATAL":
            self.fatal.append(event)


def _group(events: Sequence[TrafficEvent]) -> tuple[dict[str, _Group], list[str]]:
    """Groups by fingerprint, and each event's fingerprint in order."""
    groups: dict[str, _Group] = {}
    keys: list[str] = []
    for event in events:
        key, route, message = fingerprint.of_event(event)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(
                key, route, message, event, event.created_at, event.created_at
            )
        group.add(event)
        keys.append(key)
    return groups, keys


def _record_exceptions(conn: Connection, groups: dict[str, _Group], now: datetime) -> None:
    for _key, group in sorted(groups.items()):  # fixed lock order, as for the outbox
        if not group.fatal:
            continue
        event = max(group.fatal, key=lambda item: item.created_at)
        group.sample = sample_of(event, group.route, group.message)
        row = {
            "id": new_id(),
            "traffic_source_id": event.traffic_source_id,
            "fingerprint": group.key,
            "status": "open",
            "kind": event.kind,
            "method": event.method,
            "route": group.route[:2048],
            "http_status": event.status,
            "message": group.message,
            "count": len(group.fatal),
            "first_seen_at": min(item.created_at for item in group.fatal),
            "last_seen_at": event.created_at,
            "resolved_at": None,
            "reopened_at": None,
            "times_reopened": 0,
            "sample": group.sample,
            "created_at": now,
            "updated_at": now,
        }
        exception_id, state, _count = queries.upsert_exception(conn, row)
        group.exception = (exception_id, state)


def record_exceptions(conn: Connection, events: Sequence[TrafficEvent]) -> None:
    """Group FATAL records into exceptions, queueing no notification: for imported history,
    which no webhook should announce now."""
    groups, _keys = _group([event for event in events if event.level == "FATAL"])
    _record_exceptions(conn, groups, utcnow())


def on_traffic(conn: Connection, events: Sequence[TrafficEvent]) -> None:
    """Group FATAL records into exceptions and queue webhook notifications (same transaction)."""
    if not events:
        return
    hooks = queries.webhooks_for_sources(conn, {event.traffic_source_id for event in events})
    fatal = [event for event in events if event.level == "FATAL"]
    if not hooks and not fatal:
        return
    now = utcnow()
    # Fingerprints only for what needs one: FATAL records, and records some webhook wants.
    by_source: dict[str, list[RowMapping]] = {}
    for hook in hooks:
        by_source.setdefault(hook["traffic_source_id"], []).append(hook)
    wanted = [
        event
        for event in events
        if event.level == "FATAL"
        or any(matches(hook, event) for hook in by_source.get(event.traffic_source_id, ()))
    ]
    groups, keys = _group(wanted)
    _record_exceptions(conn, groups, now)
    if not hooks:
        return

    # One pending outbox row per (webhook, fingerprint), however many events hit it.
    pending: dict[tuple[str, str], dict[str, Any]] = {}
    for event, key in zip(wanted, keys, strict=True):
        for hook in by_source.get(event.traffic_source_id, ()):
            if not matches(hook, event):
                continue
            group = groups[key]
            row = pending.get((hook["id"], key))
            if row is None:
                if not group.sample:
                    group.sample = sample_of(group.latest, group.route, group.message)
                exception_id, exception_state = group.exception or (None, None)
                pending[(hook["id"], key)] = {
                    "id": new_id(),
                    "webhook_id": hook["id"],
                    "group_key": key,
                    "pending_key": key,
                    "state": "pending",
                    "count": 1,
                    "sample": group.sample,
                    "exception_id": exception_id,
                    "exception_state": exception_state,
                    "first_at": event.created_at,
                    "last_at": event.created_at,
                    "next_attempt_at": now,
                    "attempts": 0,
                    "last_error": None,
                    "created_at": now,
                    "delivered_at": None,
                }
            else:
                row["count"] += 1
                row["first_at"] = min(row["first_at"], event.created_at)
                row["last_at"] = max(row["last_at"], event.created_at)
    # A fixed order, so that concurrent ingest transactions lock shared rows in the same order
    # (no deadlock on PostgreSQL).
    queries.enqueue(conn, [pending[key] for key in sorted(pending)])
