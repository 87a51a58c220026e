"""What the collector tests share (importable as ``collector.harness``): real HTTP servers on
127.0.0.1 started and stopped by the tests, and an in-memory transport.

``stand_in`` (a ``StandInServer``) takes the place of a LogHarbor server where the real one is
not the point (retries, backoff, a server that is down or slow); ``running_logharbor`` starts the
real one (``logharbor serve`` in a subprocess, for the end-to-end tests). ``serve_asgi`` and
``serve_wsgi`` run real apps under uvicorn and werkzeug.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from werkzeug.serving import make_server

from fixtures.network import StandInHTTPServer, free_port
from fixtures.waiting import wait_until
from logharbor.collector import SendResult
from logharbor.common.timestamps import iso, utcnow

SECRET = "collector-e2e-secret-that-is-long-enough"


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Reply = tuple[int, Any, dict[str, str]]


@dataclass
class StandInServer:
    """A small real ingest server. ``reply(hit)`` decides each answer; ``hold`` stalls them."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    batch: bool = True
    reply: Callable[[Hit], Reply | None] | None = None
    # While cleared, every request waits (a server that accepted the connection but is stuck).
    hold: threading.Event = field(default_factory=threading.Event)
    waiting: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def records(self) -> list[dict[str, Any]]:
        """Every record the stand-in accepted, in arrival order."""
        out: list[dict[str, Any]] = []
        for hit in self.hits:
            if hit.path == "/api/v1/ingest" and self.batch:
                out.extend(hit.body["records"])
            elif hit.path == "/ingest-log":
                out.append(hit.body)
        return out

    def answer(self, hit: Hit) -> Reply:
        with self.lock:
            self.waiting += 1
        self.hold.wait()
        with self.lock:
            self.waiting -= 1
            self.hits.append(hit)
        if self.reply is not None:
            custom = self.reply(hit)
            if custom is not None:
                return custom
        if hit.path == "/api/v1/ingest":
            if not self.batch:
                return 404, {"name": "NotFound", "message": "Not Found"}, {}
            count = len(hit.body["records"])
            items = [{"index": n, "id": f"id-{n}"} for n in range(count)]
            return (
                201,
                {"received": count, "stored": count, "failed": 0, "items": items, "errors": []},
                {},
            )
        if hit.path == "/ingest-log":
            return 201, None, {}
        return 404, {"name": "NotFound", "message": "Not Found"}, {}


@contextlib.contextmanager
def running_stand_in() -> Iterator[StandInServer]:
    state = StandInServer()
    state.hold.set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("latin-1")
            hit = Hit("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            status, payload, headers = state.answer(hit)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = StandInHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.hold.set()
        server.shutdown()
        server.server_close()


class MemoryTransport:
    """Keeps what the collector would send (the wire records), like sentry's capture_envelopes."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.spans: list[dict[str, Any]] = []
        self.resources: list[dict[str, Any]] = []
        self.closed = False

    def send(self, records: Sequence[dict[str, Any]]) -> SendResult:
        self.records.extend(records)
        return SendResult(sent=len(records))

    def send_spans(
        self, spans: Sequence[dict[str, Any]], resource: Mapping[str, Any]
    ) -> SendResult:
        self.spans.extend(spans)
        self.resources.append(dict(resource))
        return SendResult(sent=len(spans))

    def close(self) -> None:
        self.closed = True


@dataclass
class Served:
    """A running app server; ``with serve_asgi(app) as served:`` stops it at the end."""

    url: str
    stop: Callable[[], None]

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_asgi(app: Any, root_path: str = "") -> Served:
    """Run ``app`` under uvicorn on a free port in a thread; returns once it accepts requests.

    ``root_path`` is uvicorn's ``--root-path``: the app is served under that prefix, as behind a
    proxy that strips it (a request for /orders/1 reaches the app as /shop/orders/1)."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        root_path=root_path,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "uvicorn to start")

    def stop() -> None:
        server.should_exit = True
        thread.join()

    return Served(f"http://127.0.0.1:{port}", stop)


def serve_wsgi(app: Any) -> Served:
    """Run ``app`` under werkzeug's threaded server on a free port in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return Served(f"http://127.0.0.1:{server.server_port}", stop)


def drain(collector: Any, accepted: int, limit: float = 60.0) -> None:
    """Wait until ``accepted`` records were handed to ``collector``, then flush them all.

    A server answers the client before the middleware records the exchange (that happens once
    the last byte is out), so a test that flushes straight after its last request could flush
    before that request's record exists.
    """
    wait_until(
        lambda: collector.stats().accepted + collector.stats().sampled_out >= accepted,
        f"{accepted} records to be handed over",
        limit,
    )
    assert collector.flush(limit)


@dataclass
class LogHarbor:
    """A running ``logharbor serve``, with an owner's token, one traffic source and its key."""

    url: str
    process: subprocess.Popen[bytes]
    token: str
    source_id: str
    ingest_key: str

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"{self.url}{path}", params=params, headers={"Authorization": f"Bearer {self.token}"}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def records(self, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.get(
                f"/http-traffic-record/{self.source_id}", page=page, pageLimit=100, **params
            )
            out.extend(body["data"])
            if len(out) >= body["meta"]["totalItems"] or not body["data"]:
                return out
            page += 1

    def detail(self, record_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.get(f"/http-traffic-record/{self.source_id}/{record_id}")
        return body

    def pathname_groups(self, **params: Any) -> list[dict[str, Any]]:
        """``GET /stats/:id?groupBy=pathname`` over the day around now: its groups."""
        now = utcnow()
        body = self.get(
            f"/stats/{self.source_id}",
            startDate=iso(now - timedelta(days=1)),
            endDate=iso(now + timedelta(days=1)),
            interval="1d",
            groupBy="pathname",
            **params,
        )
        groups: list[dict[str, Any]] = body["groups"]
        return groups


@contextlib.contextmanager
def running_logharbor(database_url: str, data_dir: Path) -> Iterator[LogHarbor]:
    """``logharbor serve`` on ``database_url`` (migrated, empty), signed up and ready to ingest."""
    port = free_port()
    env = {
        **os.environ,
        "LOGHARBOR_DATABASE_URL": database_url,
        "LOGHARBOR_DATA_DIR": str(data_dir),
        "LOGHARBOR_SECRET_KEY": SECRET,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "logharbor", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # The deadline only stops a broken start from hanging the suite; it is no speed limit.
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline, "logharbor serve never answered /health"
            if process.poll() is not None:
                raise AssertionError(f"logharbor serve exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        account = {"name": "Ops", "email": "ops@example.com", "password": "password123"}
        assert httpx.post(f"{url}/auth/signup", json=account).status_code == 201
        login = httpx.post(f"{url}/auth/login", json=account)
        token = login.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        source = httpx.post(
            f"{url}/traffic-source",
            json={"name": "shop", "trafficDomain": "https://shop.example.com"},
            headers=auth,
        )
        assert source.status_code == 201, source.text
        source_id = source.json()["id"]
        key = httpx.post(
            f"{url}/traffic-source/{source_id}/ingest-keys",
            json={"name": "collector"},
            headers=auth,
        )
        assert key.status_code == 201, key.text
        yield LogHarbor(url, process, token, source_id, key.json()["key"])
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGCONT)
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
