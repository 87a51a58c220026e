"""The calls an app makes: the httpx transports (sync, async), httpx event hooks, requests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from flask import Flask, Response, jsonify, request

from collector.harness import MemoryTransport, Served, serve_wsgi
from logharbor.collector import AsyncLogHarborTransport, Collector, LogHarborTransport
from logharbor.collector.httpx_transport import async_event_hooks, event_hooks
from logharbor.collector.requests_adapter import instrument_session


@pytest.fixture(scope="module")
def upstream() -> Iterator[Served]:
    """The API the app calls: a real Flask app on 127.0.0.1."""
    app = Flask("upstream")

    @app.post("/charge")
    def charge() -> Any:
        body = request.get_json()
        return jsonify(ok=True, amount=body["amount"], secret="upstream-secret"), 201

    @app.get("/down")
    def down() -> Any:
        return jsonify(error="maintenance"), 503

    @app.get("/big")
    def big() -> Response:
        return Response("x" * 10_000, mimetype="text/plain")

    with serve_wsgi(app) as served:
        yield served


@pytest.fixture
def captured() -> Iterator[tuple[Collector, MemoryTransport]]:
    transport = MemoryTransport()
    collector = Collector(transport=transport, flush_interval=0.05)
    yield collector, transport
    collector.close()


def check_charge(record: dict[str, Any], upstream: Served, bodies: bool) -> None:
    assert record["domainUrl"] == upstream.url
    assert (record["method"], record["pathnameUrl"], record["status"]) == ("POST", "/charge", 201)
    assert record["queryParams"] == {"token": "****", "v": "2"}
    assert record["requestHeaders"]["authorization"] == "****"
    assert record["trafficUserId"] == "svc-billing"
    assert record["elapsedTime"] > 0
    if bodies:
        assert record["requestBody"] == {"amount": 5, "password": "****"}
        assert record["responseBody"] == {"ok": True, "amount": 5, "secret": "****"}
    else:
        assert record["requestBody"] is None and record["responseBody"] is None


def call_options() -> dict[str, Any]:
    return {
        "params": {"token": "t0k", "v": "2"},
        "json": {"amount": 5, "password": "pw"},
        "headers": {"Authorization": "Bearer upstream-token"},
    }


@pytest.mark.parametrize("bodies", [False, True])
def test_httpx_sync_transport(
    upstream: Served, captured: tuple[Collector, MemoryTransport], bodies: bool
) -> None:
    collector, transport = captured
    wrapped = LogHarborTransport(
        collector, capture_bodies=bodies, max_body_bytes=4096, user_id="svc-billing"
    )
    with httpx.Client(transport=wrapped) as client:
        response = client.post(f"{upstream.url}/charge", **call_options())
        assert response.json()["amount"] == 5
        assert client.get(f"{upstream.url}/down").status_code == 503
        with client.stream("GET", f"{upstream.url}/big") as streamed:
            assert sum(len(chunk) for chunk in streamed.iter_bytes()) == 10_000
    assert collector.flush(30)
    charge, down, big = transport.records
    check_charge(charge, upstream, bodies)
    assert (down["status"], down["pathnameUrl"]) == (503, "/down")
    assert big["status"] == 200
    if bodies:
        assert big["responseBody"].endswith("[truncated: 10000 bytes in total]")


@pytest.mark.parametrize("bodies", [False, True])
def test_httpx_async_transport(
    upstream: Served, captured: tuple[Collector, MemoryTransport], bodies: bool
) -> None:
    collector, transport = captured

    async def main() -> None:
        wrapped = AsyncLogHarborTransport(collector, capture_bodies=bodies, user_id="svc-billing")
        async with httpx.AsyncClient(transport=wrapped) as client:
            response = await client.post(f"{upstream.url}/charge", **call_options())
            assert response.status_code == 201
            results = await asyncio.gather(*(client.get(f"{upstream.url}/down") for _ in range(5)))
            assert {r.status_code for r in results} == {503}

    asyncio.run(main())
    assert collector.flush(30)
    assert len(transport.records) == 6
    check_charge(transport.records[0], upstream, bodies)


def test_httpx_event_hooks(upstream: Served, captured: tuple[Collector, MemoryTransport]) -> None:
    collector, transport = captured
    with httpx.Client(event_hooks=event_hooks(collector, user_id="svc-billing")) as client:
        assert client.post(f"{upstream.url}/charge", **call_options()).status_code == 201

    async def main() -> None:
        hooks = async_event_hooks(collector, user_id="svc-billing")
        async with httpx.AsyncClient(event_hooks=hooks) as client:
            assert (await client.get(f"{upstream.url}/down")).status_code == 503

    asyncio.run(main())
    assert collector.flush(30)
    charge, down = transport.records
    check_charge(charge, upstream, bodies=False)
    assert down["status"] == 503


def test_a_failed_call_is_not_recorded_and_its_error_reaches_the_caller(
    captured: tuple[Collector, MemoryTransport],
) -> None:
    from fixtures.network import free_port

    collector, transport = captured
    with (
        httpx.Client(transport=LogHarborTransport(collector)) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get(f"http://127.0.0.1:{free_port()}/nothing")
    assert collector.flush(30)
    assert transport.records == []


@pytest.mark.parametrize("bodies", [False, True])
def test_requests_adapter(
    upstream: Served, captured: tuple[Collector, MemoryTransport], bodies: bool
) -> None:
    collector, transport = captured
    with requests.Session() as session:
        instrument_session(session, collector, capture_bodies=bodies, user_id="svc-billing")
        response = session.post(f"{upstream.url}/charge", **call_options())
        assert response.json()["amount"] == 5
        assert session.get(f"{upstream.url}/down").status_code == 503
        streamed = session.get(f"{upstream.url}/big", stream=True)
        assert len(streamed.content) == 10_000
    assert collector.flush(30)
    charge, down, big = transport.records
    check_charge(charge, upstream, bodies)
    assert down["status"] == 503
    # A streamed response is the caller's to read: its body is not captured.
    assert big["responseBody"] is None
