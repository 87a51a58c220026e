"""Webhook delivery from the durable outbox, off the request path.

One thread per process polls the outbox. For each webhook with due rows it takes a *lease* on
the webhook row (an UPDATE whose WHERE says "free", checked by row count), so that any number of
workers sharing the database send each message once and keep at most one message in flight per
webhook. Under the lease it freezes the due rows (their counts stop growing; new events open a
new pending row), commits, sends outside any transaction, and records the outcome:

- success: rows delivered; the webhook's cooldown starts (``next_send_at``), and everything that
  arrives meanwhile waits and goes out as one message with its count;
- failure: each row backs off exponentially (``retry_base * 2^(attempts-1)``, at most an hour,
  or the receiver's ``Retry-After``) until 24 hours after it was queued, then it is given up.

A worker that dies mid-send loses nothing: its lease expires and another worker sends the rows
again (at least once; generic receivers can deduplicate on ``X-LogHarbor-Delivery``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import RowMapping

from logharbor.alerts import channels, queries, urls
from logharbor.collector.transport import parse_retry_after
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database
from logharbor.settings import Settings

log = logging.getLogger("logharbor.alerts")

MAX_ALERTS_PER_MESSAGE = 10
MAX_BACKOFF_SECONDS = 3600.0
ERROR_CHARS = 500


def policy_of(settings: Settings) -> urls.UrlPolicy:
    return urls.UrlPolicy(
        allow_http=settings.webhook_allow_http, allow_private=settings.webhook_allow_private
    )


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None
    retry_after: float | None = None


def post(
    client: httpx.Client,
    policy: urls.UrlPolicy,
    webhook: Mapping[Any, Any],
    delivery_id: str,
    document: Mapping[Any, Any],
) -> Outcome:
    """Send one message; never raises. The URL is checked again here (and per connection)."""
    try:
        url = urls.validate_url(webhook["value"], policy)
        body, headers = channels.encode(delivery_id, webhook, document, int(time.time()))
        response = client.post(url, content=body, headers=headers)
    except urls.UrlRefused as exc:
        return Outcome(False, None, f"Refused: {exc}")
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, None)
    try:
        detail = response.text.strip()
    except Exception:  # an undecodable body is not worth failing over
        detail = ""
    error = f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
    return Outcome(
        False,
        response.status_code,
        error[:ERROR_CHARS],
        parse_retry_after(response.headers.get("retry-after")),
    )


def make_client(settings: Settings) -> httpx.Client:
    return urls.client(policy_of(settings), settings.webhook_timeout_seconds)


def delivery_id_of(row_ids: Sequence[str]) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "logharbor:" + ",".join(sorted(row_ids))))


def backoff_seconds(settings: Settings, attempts: int) -> float:
    delay = settings.webhook_retry_base_seconds * 2 ** min(max(0, attempts - 1), 30)
    # Jitter spreads retries of many webhooks that failed together (a receiver outage).
    return float(min(delay, MAX_BACKOFF_SECONDS) * random.uniform(0.9, 1.1))


class Dispatcher:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.lease = timedelta(seconds=settings.webhook_timeout_seconds * 3 + 30)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(
            max_workers=settings.webhook_concurrency, thread_name_prefix="logharbor-webhook"
        )
        self._policy = policy_of(settings)
        self._client = make_client(settings)
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="logharbor-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        # In-flight sends finish (bounded by the HTTP timeout) so their outcome is recorded.
        self._pool.shutdown(wait=True)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("webhook dispatcher tick failed")
            self._stop.wait(self.settings.webhook_poll_seconds)

    # -- one round -------------------------------------------------------------------------------

    def tick(self, *, wait: bool = False) -> int:
        """Start sending every due message; returns how many were started."""
        now = utcnow()
        with self._lock:
            busy = len(self._in_flight)
        room = self.settings.webhook_concurrency - busy
        if room <= 0:
            return 0
        group = self.settings.webhook_group_seconds
        with self.db.read() as conn:
            candidates = queries.due_webhook_ids(conn, now, group, room)
        futures = []
        for webhook_id in candidates:
            claimed = self._claim(webhook_id, now, group)
            if claimed is None:
                continue
            with self._lock:
                self._in_flight.add(webhook_id)
            futures.append(self._pool.submit(self._deliver, *claimed))
        if wait:
            for future in futures:
                future.result()
        return len(futures)

    def _claim(
        self, webhook_id: str, now: datetime, group: float
    ) -> tuple[RowMapping, str, list[RowMapping], str] | None:
        token = new_id()
        with self.db.write() as conn:
            if not queries.claim_webhook(conn, webhook_id, now, now + self.lease, token):
                return None
            rows = queries.take_due_rows(conn, webhook_id, now, group, MAX_ALERTS_PER_MESSAGE)
            if not rows:
                queries.release_webhook(conn, webhook_id, token)
                return None
            webhook = queries.get_webhook(conn, webhook_id)
            assert webhook is not None
            name = queries.source_names(conn, [webhook["traffic_source_id"]]).get(
                webhook["traffic_source_id"], ""
            )
        return webhook, token, rows, name

    def _deliver(
        self, webhook: RowMapping, token: str, rows: list[RowMapping], source_name: str
    ) -> None:
        try:
            alerts = [channels.alert_from_row(row) for row in rows]
            delivery_id = delivery_id_of([row["id"] for row in rows])
            document = channels.payload(delivery_id, webhook, source_name, alerts)
            outcome = post(self._client, self._policy, webhook, delivery_id, document)
            self._record(webhook, token, rows, outcome)
        except Exception:
            log.exception("webhook %s delivery crashed", webhook["id"])
        finally:
            with self._lock:
                self._in_flight.discard(webhook["id"])

    def _record(
        self, webhook: RowMapping, token: str, rows: list[RowMapping], outcome: Outcome
    ) -> None:
        now = utcnow()
        retry_window = timedelta(hours=self.settings.webhook_retry_hours)
        with self.db.write() as conn:
            if outcome.ok:
                queries.mark_delivered(conn, [row["id"] for row in rows], now)
                cooldown = timedelta(seconds=webhook["cooldown_seconds"])
                queries.release_webhook(conn, webhook["id"], token, next_send_at=now + cooldown)
                queries.record_delivery(conn, webhook["id"], status="delivered", error=None, at=now)
                return
            error = outcome.error or "delivery failed"
            gave_up = False
            for row in rows:
                attempts = row["attempts"] + 1
                delay = backoff_seconds(self.settings, attempts)
                if outcome.retry_after is not None:
                    delay = max(delay, outcome.retry_after)
                next_at: datetime | None = now + timedelta(seconds=delay)
                if next_at is not None and next_at - row["created_at"] > retry_window:
                    next_at = None
                    gave_up = True
                queries.mark_failed_attempt(
                    conn, row["id"], attempts=attempts, error=error, next_attempt_at=next_at
                )
            queries.release_webhook(conn, webhook["id"], token)
            queries.record_delivery(
                conn,
                webhook["id"],
                status="failed" if gave_up else "retrying",
                error=error,
                at=now,
            )
        log.warning("webhook %s delivery failed: %s", webhook["id"], error)


def send_test(db: Database, settings: Settings, webhook: RowMapping, source_name: str) -> Outcome:
    """``POST /webhooks/:id/test``: send now, record the outcome on the webhook."""
    delivery_id = new_id()
    document = channels.test_payloads(delivery_id, webhook, source_name)
    with make_client(settings) as client:
        outcome = post(client, policy_of(settings), webhook, delivery_id, document)
    with db.write() as conn:
        queries.record_delivery(
            conn,
            webhook["id"],
            status="delivered" if outcome.ok else "failed",
            error=outcome.error,
            at=utcnow(),
        )
    return outcome
