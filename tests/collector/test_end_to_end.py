"""The collector against the real LogHarbor server, started by the test on both databases.

A real FastAPI app (uvicorn) and a real Flask app (werkzeug) with the middleware, driven by
httpx; outbound calls through the httpx transport and the requests adapter; the records are
read back through the server's list API.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from fastapi import FastAPI, Request
from flask import Flask, jsonify

from collector.harness import (
    LogHarbor,
    drain,
    running_logharbor,
    serve_asgi,
    serve_wsgi,
    wait_until,
)
from logharbor.collector import Collector, HttpTransport, LogHarborASGIMiddleware
from logharbor.collector.flask import instrument
from logharbor.collector.httpx_transport import LogHarborTransport
from logharbor.collector.requests_adapter import instrument_session


@pytest.fixture
def logharbor(database_url: str, tmp_path: Path) -> Iterator[LogHarbor]:
    with running_logharbor(database_url, tmp_path / "data") as server:
        yield server


def shop_api(collector: Collector) -> FastAPI:
    app = FastAPI()

    @app.get("/orders/{order_id}")
    def order(order_id: int, request: Request) -> dict[str, Any]:
        request.state.user_id = "customer-7"
        return {"id": order_id}

    @app.post("/login")
    async def login(request: Request) -> dict[str, Any]:
        body = await request.json()
        return {"user": body["user"], "accessToken": "issued-secret"}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("server error")

    app.add_middleware(
        LogHarborASGIMiddleware,
        collector=collector,
        capture_bodies=True,
        user_id=lambda scope: scope.get("state", {}).get("user_id"),
    )
    return app


def admin_site(collector: Collector) -> Flask:
    app = Flask("admin")

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> Any:
        return jsonify(id=user_id)

    @app.delete("/users/<int:user_id>")
    def delete(user_id: int) -> Any:
        return jsonify(error="forbidden"), 403

    instrument(app, collector)
    return app


def test_apps_and_clients_ship_their_traffic_to_logharbor(logharbor: LogHarbor) -> None:
    collector = Collector(logharbor.url, api_key=logharbor.ingest_key, flush_interval=0.1)
    with serve_asgi(shop_api(collector)) as api, serve_wsgi(admin_site(collector)) as admin:
        with httpx.Client(base_url=api.url) as client:
            for n in range(5):
                assert client.get(f"/orders/{n}?page=1&api_key=k").json() == {"id": n}
            login = client.post(
                "/login",
                json={"user": "jane", "password": "hunter2"},
                headers={"Authorization": "Bearer app-token"},
            )
            assert login.json()["accessToken"] == "issued-secret"
        with httpx.Client(base_url=api.url) as client:
            assert client.get("/boom").status_code == 500
        with httpx.Client(base_url=admin.url) as client:
            assert client.get("/users/3").json() == {"id": 3}
            assert client.delete("/users/3").status_code == 403
        # The app's own outbound calls: httpx (through the transport) and requests.
        with httpx.Client(transport=LogHarborTransport(collector)) as outbound:
            assert outbound.get(f"{admin.url}/users/11").status_code == 200
        session = requests.Session()
        instrument_session(session, collector)
        assert session.get(f"{admin.url}/users/12").status_code == 200
        session.close()
        drain(collector, 13)
    stats = collector.stats()
    # 5 orders + login + boom, 2 admin pages, 2 outbound calls, each outbound call also served by
    # the Flask app (recorded by its middleware).
    assert (stats.sent, stats.rejected, stats.failed, stats.dropped) == (13, 0, 0, 0)
    assert collector.transport.batch_supported is True  # type: ignore[attr-defined]
    collector.close()

    records = logharbor.records()
    assert len(records) == 13
    by_path: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        by_path.setdefault((record["method"], record["pathname"]), []).append(record)
    assert len(by_path["GET", "/orders/3"]) == 1
    order = by_path["GET", "/orders/3"][0]
    assert order["domain"] == api.url
    assert order["status"] == 200 and order["level"] == "INFO"
    assert order["trafficUserId"] == "customer-7"
    assert order["elapsedTime"] > 0
    assert order["request"]["queryParams"] == {"page": "1", "api_key": "****"}
    assert by_path["GET", "/boom"][0]["level"] == "FATAL"
    assert by_path["DELETE", "/users/3"][0]["level"] == "WARNING"
    assert len(by_path["GET", "/users/11"]) == 2  # the call made, and the call served
    assert len(by_path["GET", "/users/12"]) == 2

    login_record = logharbor.detail(by_path["POST", "/login"][0]["id"])
    assert login_record["request"]["headers"]["authorization"] == "****"
    assert login_record["request"]["body"] == {"user": "jane", "password": "****"}
    assert login_record["response"]["body"] == {"user": "jane", "accessToken": "****"}


def test_one_by_one_ingest_log_and_a_wrong_key(logharbor: LogHarbor) -> None:
    transport = HttpTransport(
        logharbor.url, logharbor.ingest_key, logharbor.source_id, use_batch=False
    )
    collector = Collector(transport=transport, flush_interval=0.05)
    with serve_wsgi(admin_site(collector)) as admin, httpx.Client(base_url=admin.url) as client:
        for n in range(3):
            assert client.get(f"/users/{n}").status_code == 200
        drain(collector, 3)
    assert collector.stats().sent == 3
    collector.close()
    assert sorted(r["pathname"] for r in logharbor.records()) == [
        "/users/0",
        "/users/1",
        "/users/2",
    ]

    wrong = Collector(logharbor.url, api_key="lhk_not_a_real_key", flush_interval=0.05)
    with serve_wsgi(admin_site(wrong)) as admin:
        assert httpx.get(f"{admin.url}/users/9").status_code == 200
        drain(wrong, 1)
    stats = wrong.stats()
    assert (stats.sent, stats.rejected) == (0, 1)
    assert "401" in (stats.last_error or "")
    wrong.close()
    assert len(logharbor.records()) == 3


def test_a_frozen_logharbor_does_not_slow_the_app_and_records_arrive_after(
    logharbor: LogHarbor,
) -> None:
    collector = Collector(
        logharbor.url,
        api_key=logharbor.ingest_key,
        flush_interval=0.05,
        timeout=1.0,
        backoff_base=0.2,
        backoff_max=1.0,
        max_attempts=1000,
        max_queue=10_000,
    )
    os.killpg(logharbor.process.pid, signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        with (
            serve_asgi(shop_api(collector)) as api,
            httpx.Client(base_url=api.url, timeout=10) as client,
        ):
            for n in range(100):
                assert client.get(f"/orders/{n}").status_code == 200
            wait_until(lambda: collector.stats().accepted == 100, "100 records")
            assert collector.stats().sent == 0
        # Keep LogHarbor frozen until the collector has timed out on it at least once.
        wait_until(lambda: collector.stats().last_error is not None, "a send to time out")
        assert "Timeout" in (collector.stats().last_error or "")
    finally:
        os.killpg(logharbor.process.pid, signal.SIGCONT)
    assert collector.flush(120)
    stats = collector.stats()
    assert (stats.sent, stats.failed, stats.dropped) == (100, 0, 0)
    assert stats.retries >= 1
    collector.close()
    paths = {r["pathname"] for r in logharbor.records()}
    # A batch the server read after it woke may have been stored although the collector had
    # already timed out and sent it again: delivery is at least once.
    assert paths == {f"/orders/{n}" for n in range(100)}


def test_a_user_token_with_its_source_and_an_unknown_source(logharbor: LogHarbor) -> None:
    good = Collector(
        logharbor.url,
        api_key=logharbor.token,
        traffic_source_id=logharbor.source_id,
        route_as_pathname=True,
        flush_interval=0.05,
    )
    unknown = Collector(
        logharbor.url,
        api_key=logharbor.token,
        traffic_source_id="0197548f-0e8e-7550-b283-f26fd98a9423",
        flush_interval=0.05,
    )
    for collector in (good, unknown):
        with serve_wsgi(admin_site(collector)) as admin:
            assert httpx.get(f"{admin.url}/users/1").status_code == 200
            drain(collector, 1)
    assert (good.stats().sent, good.stats().rejected) == (1, 0)
    assert (unknown.stats().sent, unknown.stats().rejected) == (0, 1)
    assert "Traffic source not found" in (unknown.stats().last_error or "")
    good.close()
    unknown.close()
    # route_as_pathname: stored under the route, so statistics group by route.
    assert [r["pathname"] for r in logharbor.records()] == ["/users/<int:user_id>"]


class PaymentFailed(Exception):
    pass


def test_a_trace_across_apps_and_the_exception_of_a_5xx_reach_logharbor(
    logharbor: LogHarbor,
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    collector = Collector(logharbor.url, api_key=logharbor.ingest_key, flush_interval=0.05)
    with serve_wsgi(admin_site(collector)) as admin:
        app = FastAPI()

        @app.post("/checkout")
        def checkout() -> None:
            # A call made while serving the request, to another app that records its side too.
            with httpx.Client(transport=LogHarborTransport(collector)) as client:
                assert client.get(f"{admin.url}/users/5").status_code == 200
            raise PaymentFailed("card declined: token=tok_live_42")

        app.add_middleware(LogHarborASGIMiddleware, collector=collector)
        with serve_asgi(app) as api:
            response = httpx.post(
                f"{api.url}/checkout",
                headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
            )
            assert response.status_code == 500
        drain(collector, 3)
    assert collector.stats().sent == 3
    collector.close()

    records = logharbor.records()
    assert sorted(r["pathname"] for r in records) == ["/checkout", "/users/5", "/users/5"]
    details = [logharbor.detail(record["id"]) for record in records]
    assert {detail["traceId"] for detail in details} == {trace_id}
    (checkout_record,) = [d for d in details if d["pathname"] == "/checkout"]
    users = [d for d in details if d["pathname"] == "/users/5"]
    # The call made and the call served: both saw the traceparent the call sent, which names
    # the call's own span; the admin app's request is a span of its own under it.
    (sent,) = {d["request"]["headers"]["traceparent"] for d in users}
    call_span = sent.split("-")[2]
    assert sorted(d["spanId"] == call_span for d in users) == [False, True]
    spans = {d["spanId"] for d in details}
    assert len(spans) == 3 and "00f067aa0ba902b7" not in spans
    assert all(d.get("exception") is None for d in users)
    exception = checkout_record["exception"]
    assert exception["type"] == f"{__name__}.PaymentFailed"
    assert exception["message"] == "card declined: token=****"
    assert exception["frames"][-1]["function"] == "checkout"
    assert exception["stacktrace"].endswith("PaymentFailed: card declined: token=****\n")
    assert "tok_live_42" not in str(checkout_record)
