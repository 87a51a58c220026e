"""Alerts test helpers: a real HTTP receiver on 127.0.0.1, sources, events, fast settings."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import insert

from helpers import AUser
from logharbor.app import ingest_subscribers
from logharbor.auth import queries as auth_queries
from logharbor.auth.tokens import issue_token
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database, make_engine
from logharbor.db.tables import traffic_sources
from logharbor.ingest.events import TrafficEvent
from logharbor.settings import Settings

WAIT = 30.0  # seconds; a guard against hanging, not a performance limit


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next status of ``statuses`` (then 200) and records it."""

    server: ThreadingHTTPServer | None = None
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    extra_headers: dict[str, str] = field(default_factory=dict)
    answered: list[int] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self, port: int = 0) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver.cond:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.answered.append(status)
                    if status < 300:
                        receiver.requests.append(
                            Received(
                                self.path, {k.lower(): v for k, v in self.headers.items()}, body
                            )
                        )
                    receiver.cond.notify_all()
                self.send_response(status)
                for name, value in receiver.extra_headers.items():
                    self.send_header(name, value)
                payload = b"ok" if status < 300 else b"receiver says no"
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_for(self, count: int, *, answered: bool = False) -> list[Received]:
        """Block until ``count`` accepted requests (or answers of any status) arrived."""
        with self.cond:
            ok = self.cond.wait_for(
                lambda: len(self.answered if answered else self.requests) >= count, WAIT
            )
        assert ok, f"receiver got {len(self.requests)} requests, answered {self.answered}"
        return list(self.requests)


FAST = {
    "webhook_allow_http": True,
    "webhook_allow_private": True,
    "webhook_poll_seconds": 0.05,
    "webhook_group_seconds": 0.0,
    "webhook_retry_base_seconds": 0.05,
    "webhook_default_cooldown_seconds": 0,
    "webhook_timeout_seconds": 5.0,
}


def add_source(db: Database, user_id: str, *, retention_days: int | None = None) -> str:
    now = utcnow()
    source_id = new_id()
    with db.write() as conn:
        conn.execute(
            insert(traffic_sources).values(
                id=source_id,
                user_id=user_id,
                name="Shop API",
                traffic_domain="https://api.example.com",
                retention_days=retention_days,
                created_at=now,
                updated_at=now,
            )
        )
    return source_id


def event(
    source_id: str,
    *,
    status: int = 500,
    pathname: str = "/users/42",
    method: str = "GET",
    preview: str | None = '{"message": "User 42 exploded"}',
    kind: str = "traffic",
    at: datetime | None = None,
) -> TrafficEvent:
    level = "FATAL" if status >= 500 else "WARNING" if status >= 400 else "INFO"
    return TrafficEvent(
        kind=kind,  # type: ignore[arg-type]
        id=new_id(),
        traffic_source_id=source_id,
        domain_id=None if kind == "core" else new_id(),
        domain=None if kind == "core" else "https://api.example.com",
        pathname_id=new_id(),
        pathname=pathname,
        method=method,
        status=status,
        level=level,
        elapsed_time=12.5,
        traffic_user_id=None,
        created_at=at or utcnow(),
        response_preview=preview,
    )


def emit(db: Database, events: list[TrafficEvent]) -> None:
    """What every ingest path does: publish inside the storing transaction."""
    with db.write() as conn:
        ingest_subscribers()(conn, events)


def ago(**delta: float) -> datetime:
    return utcnow() - timedelta(**delta)


def bare_owner(settings: Settings) -> AUser:
    """A user made straight in the database, for tests that must not run a second app (and
    so a second delivery worker) next to the one under test."""
    db = Database(make_engine(settings.resolved_database_url()))
    try:
        with db.write() as conn:
            user = auth_queries.create_user(
                conn, email=f"{new_id()}@example.com", name="Owner", password_hash="x"
            )
    finally:
        db.dispose()
    token = issue_token(user["id"], settings.secret_key, 3600)
    return AUser(id=user["id"], email=user["email"], password="", token=token)
