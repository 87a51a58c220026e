"""What the collector tests share (importable as ``collector.harness``): real HTTP servers on
127.0.0.1 started and stopped by the tests, and an in-memory transport.

``receiver`` stands in for a LogHarbor server where the real one is not the point (retries,
backoff, a server that is down or slow); ``tests/collector/test_end_to_end.py`` uses the real
one. ``serve_asgi`` / ``serve_wsgi`` run real apps under uvicorn / werkzeug.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn
from werkzeug.serving import make_server

from logharbor.collector import SendResult


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Reply = tuple[int, Any, dict[str, str]]


@dataclass
class Receiver:
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
        """Every record the receiver accepted, in arrival order."""
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
def running_receiver() -> Iterator[Receiver]:
    state = Receiver()
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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
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
        self.closed = False

    def send(self, records: Sequence[dict[str, Any]]) -> SendResult:
        self.records.extend(records)
        return SendResult(sent=len(records))

    def close(self) -> None:
        self.closed = True


def wait_until(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Poll for something another thread does; the limit only stops a broken test hanging."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


@dataclass
class Served:
    """A running app server; ``with serve_asgi(app) as served:`` stops it at the end."""

    url: str
    stop: Callable[[], None]

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_asgi(app: Any) -> Served:
    """Run ``app`` under uvicorn on a free port in a thread; returns once it accepts requests."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
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
