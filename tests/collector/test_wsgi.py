"""WSGI middleware on real apps (Flask, a bare WSGI app) served by werkzeug on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask, Response, abort, g, jsonify, request

from collector.harness import MemoryTransport, StandInServer, drain, serve_wsgi
from fixtures.waiting import wait_until
from logharbor.collector import Collector, LogHarborWSGIMiddleware, current_trace
from logharbor.collector.flask import instrument


@pytest.fixture
def captured() -> Iterator[tuple[Collector, MemoryTransport]]:
    transport = MemoryTransport()
    collector = Collector(transport=transport, flush_interval=0.05)
    yield collector, transport
    collector.close()


def flask_app(collector: Collector, **options: Any) -> Flask:
    app = Flask("shop")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> Any:
        g.user = f"user-{item_id}"
        return jsonify(id=item_id, token="server-secret")

    @app.post("/login")
    def login() -> Any:
        body = request.get_json()
        return jsonify(user=body["user"], ok=True)

    @app.post("/form")
    def form() -> Any:
        return jsonify(name=request.form["name"])

    @app.get("/missing")
    def missing() -> Any:
        abort(404)

    @app.get("/crash")
    def crash() -> Any:
        raise RuntimeError("the view crashed")

    @app.get("/stream")
    def stream() -> Response:
        def lines() -> Iterator[str]:
            for n in range(100):
                yield f"line {n}\n"

        return Response(lines(), mimetype="text/plain")

    instrument(app, collector, user_id=lambda req: getattr(g, "user", None), **options)
    return app


def test_flask_requests_are_recorded_with_route_status_and_latency(
    captured: tuple[Collector, MemoryTransport],
) -> None:
    collector, transport = captured
    app = flask_app(collector, exclude_paths=["/static"])
    with serve_wsgi(app) as served, httpx.Client(base_url=served.url) as client:
        response = client.get(
            "/items/42?page=2&password=pw", headers={"Cookie": "session=abc", "X-Trace": "t"}
        )
        assert response.json() == {"id": 42, "token": "server-secret"}
        assert client.get("/missing").status_code == 404
        assert client.get("/crash").status_code == 500
        assert client.get("/static/app.css").status_code == 404
        assert client.get("/nowhere").status_code == 404
    drain(collector, 4)
    by_path = {r["pathnameUrl"]: r for r in transport.records}
    assert set(by_path) == {"/items/42", "/missing", "/crash", "/nowhere"}
    item = by_path["/items/42"]
    assert item["domainUrl"] == served.url
    assert (item["method"], item["status"]) == ("GET", 200)
    assert item["routeTemplate"] == "/items/<int:item_id>"
    assert item["trafficUserId"] == "user-42"
    assert item["elapsedTime"] > 0
    assert item["queryParams"] == {"page": "2", "password": "****"}
    assert item["requestHeaders"]["cookie"] == "****"
    assert item["requestHeaders"]["x-trace"] == "t"
    assert item["responseHeaders"]["content-type"] == "application/json"
    assert item["requestBody"] is None and item["responseBody"] is None
    assert by_path["/missing"]["status"] == 404
    assert by_path["/crash"]["status"] == 500
    assert by_path["/crash"]["routeTemplate"] == "/crash"
    assert by_path["/nowhere"]["routeTemplate"] is None


def test_flask_bodies_when_asked_masked_and_capped(
    captured: tuple[Collector, MemoryTransport],
) -> None:
    collector, transport = captured
    app = flask_app(collector, capture_bodies=True, max_body_bytes=64)
    with serve_wsgi(app) as served, httpx.Client(base_url=served.url) as client:
        assert client.post("/login", json={"user": "jane", "password": "hunter2"}).json() == {
            "user": "jane",
            "ok": True,
        }
        assert client.post("/form", data={"name": "Ann", "token": "t0k"}).json() == {"name": "Ann"}
        assert client.get("/stream").text.count("\n") == 100
    drain(collector, 3)
    by_path = {r["pathnameUrl"]: r for r in transport.records}
    assert by_path["/login"]["requestBody"] == {"user": "jane", "password": "****"}
    assert by_path["/login"]["responseBody"] == {"user": "jane", "ok": True}
    assert by_path["/form"]["requestBody"] == {"name": "Ann", "token": "****"}
    streamed = by_path["/stream"]["responseBody"]
    assert streamed.startswith("line 0\n")
    assert streamed.endswith("[truncated: 790 bytes in total]")
    assert "hunter2" not in str(transport.records) and "t0k" not in str(transport.records)


def test_flask_keeps_answering_while_the_server_is_stuck(stand_in: StandInServer) -> None:
    stand_in.hold.clear()
    collector = Collector(
        stand_in.url,
        api_key="lhk_x",
        traffic_source_id="0197548f-0e8e-7550-b283-f26fd98a9423",
        max_queue=20,
        batch_size=10,
        flush_interval=0.01,
        timeout=60,
    )
    app = flask_app(collector)
    with serve_wsgi(app) as served, httpx.Client(base_url=served.url, timeout=10) as client:
        for n in range(200):
            assert client.get(f"/items/{n}").status_code == 200
        wait_until(lambda: collector.stats().accepted == 200, "200 records")
        assert stand_in.waiting >= 1 and stand_in.hits == []
        assert collector.stats().dropped >= 200 - 30
    stand_in.hold.set()
    assert collector.flush(30)
    stats = collector.stats()
    assert stats.sent + stats.dropped == 200
    collector.close()


def test_a_bare_wsgi_app_that_raises(captured: tuple[Collector, MemoryTransport]) -> None:
    collector, transport = captured

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("no response at all")
        environ["logharbor.route"] = "/hello/{name}"
        environ["logharbor.user_id"] = 7
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [b"hi"]

    wrapped = LogHarborWSGIMiddleware(app, collector)
    with serve_wsgi(wrapped) as served:
        assert httpx.get(f"{served.url}/hello/%C3%A9").status_code == 201
        assert httpx.get(f"{served.url}/boom").status_code == 500
    drain(collector, 2)
    hello, boom = transport.records
    assert (hello["pathnameUrl"], hello["status"]) == ("/hello/é", 201)
    assert hello["routeTemplate"] == "/hello/{name}"
    assert hello["trafficUserId"] == "7"
    assert (boom["pathnameUrl"], boom["status"]) == ("/boom", 500)


class PaymentFailed(Exception):
    """An app's own exception: sent as ``module.QualName``."""


INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_wsgi_app_that_raises_sends_its_exception_and_still_raises(
    captured: tuple[Collector, MemoryTransport],
) -> None:
    collector, transport = captured
    error = PaymentFailed('declined {"password": "hunter2"}')
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append(current_trace())
        if environ["PATH_INFO"] == "/pay":
            raise error

        def body() -> Iterator[bytes]:
            seen.append(current_trace())  # a streamed body runs under the request's trace
            yield b"one"
            raise PaymentFailed("after the response started")

        start_response("200 OK", [("Content-Type", "text/plain")])
        return body()

    wrapped = LogHarborWSGIMiddleware(app, collector)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/pay",
        "HTTP_HOST": "shop.test",
        "HTTP_TRACEPARENT": INCOMING,
        "wsgi.url_scheme": "http",
    }
    with pytest.raises(PaymentFailed) as raised:
        wrapped(environ, lambda status, headers, exc_info=None: None)
    assert raised.value is error
    assert current_trace() is None  # reset once the request is over

    streamed = wrapped({**environ, "PATH_INFO": "/stream"}, lambda *args: None)
    chunks = iter(streamed)
    assert next(chunks) == b"one"
    assert current_trace() is None  # between chunks the server's code is outside the trace
    with pytest.raises(PaymentFailed, match="after the response started"):
        next(chunks)
    streamed.close()  # type: ignore[attr-defined]
    assert collector.flush(30)
    pay, stream = transport.records
    assert (pay["status"], pay["traceId"]) == (500, TRACE_ID)
    assert pay["spanId"] == seen[0].span_id and seen[0].trace_id == TRACE_ID
    assert pay["exception"]["type"] == f"{__name__}.PaymentFailed"
    assert pay["exception"]["message"] == 'declined {"password": "****"}'
    assert pay["exception"]["frames"][-1]["function"] == "app"
    assert "hunter2" not in str(transport.records)
    # Answered 200 before it failed: not a server error.
    assert stream["status"] == 200 and "exception" not in stream
    assert seen[1] == seen[2] and seen[1].span_id == stream["spanId"] != pay["spanId"]


def test_flask_hands_over_the_exception_it_turns_into_a_500(
    captured: tuple[Collector, MemoryTransport],
) -> None:
    collector, transport = captured
    app = flask_app(collector)
    with serve_wsgi(app) as served, httpx.Client(base_url=served.url) as client:
        response = client.get("/crash", headers={"traceparent": INCOMING})
        assert response.status_code == 500  # Flask's own error page, as before
        assert client.get("/missing", headers={"traceparent": INCOMING.upper()}).status_code == 404
    drain(collector, 2)
    by_path = {r["pathnameUrl"]: r for r in transport.records}
    crash = by_path["/crash"]
    assert crash["traceId"] == TRACE_ID
    assert crash["exception"]["type"] == "RuntimeError"
    assert crash["exception"]["message"] == "the view crashed"
    assert crash["exception"]["frames"][-1]["function"] == "crash"
    assert "raise RuntimeError" in crash["exception"]["stacktrace"]
    missing = by_path["/missing"]
    assert "exception" not in missing
    assert missing["traceId"] != TRACE_ID  # an upper-case traceparent is malformed
