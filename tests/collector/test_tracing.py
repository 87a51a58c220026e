"""W3C Trace Context: parsing, the current trace, and propagation from a served request to the
calls it makes (httpx sync and async, httpx hooks, requests), on real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import requests
from fastapi import FastAPI, Request
from flask import Flask, jsonify
from flask import request as flask_request

from collector.harness import MemoryTransport, Served, drain, serve_asgi, serve_wsgi
from logharbor.collector import (
    AsyncLogHarborTransport,
    Collector,
    LogHarborASGIMiddleware,
    LogHarborTransport,
    TraceContext,
    current_trace,
    use_trace,
)
from logharbor.collector.flask import instrument
from logharbor.collector.httpx_transport import event_hooks
from logharbor.collector.requests_adapter import instrument_session
from logharbor.collector.tracing import outbound_trace, parse_traceparent, server_trace

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
INCOMING = f"00-{TRACE_ID}-{PARENT_ID}-01"
HEX32 = re.compile("[0-9a-f]{32}")
HEX16 = re.compile("[0-9a-f]{16}")


def test_a_valid_traceparent_names_its_span() -> None:
    assert parse_traceparent(INCOMING) == TraceContext(TRACE_ID, PARENT_ID, 1)
    assert parse_traceparent(INCOMING.encode()) == TraceContext(TRACE_ID, PARENT_ID, 1)
    assert parse_traceparent(f" {INCOMING}\t") == TraceContext(TRACE_ID, PARENT_ID, 1)
    assert parse_traceparent(f"00-{TRACE_ID}-{PARENT_ID}-00") == TraceContext(
        TRACE_ID, PARENT_ID, 0
    )
    # A later version may add fields; only its ids and the sampled bit are understood.
    assert parse_traceparent(f"01-{TRACE_ID}-{PARENT_ID}-03-more") == TraceContext(
        TRACE_ID, PARENT_ID, 1
    )
    assert TraceContext(TRACE_ID, PARENT_ID, 1).traceparent == INCOMING


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        INCOMING.upper(),  # the grammar is lower-case hex
        f"00-{'0' * 32}-{PARENT_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # version ff is invalid
        f"00-{TRACE_ID}-{PARENT_ID}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01",
        f"00-{TRACE_ID}-{PARENT_ID}0-01",
        f"00-{TRACE_ID}-{PARENT_ID}-1",
        f"00-{TRACE_ID[:-1]}g-{PARENT_ID}-01",
        f"00_{TRACE_ID}_{PARENT_ID}_01",
        f"{INCOMING}, {INCOMING}",  # two headers joined
        b"\xff\xfe",
    ],
)
def test_a_malformed_traceparent_is_ignored(header: str | bytes | None) -> None:
    assert parse_traceparent(header) is None
    trace = server_trace(header)
    assert trace.trace_id != TRACE_ID and HEX32.fullmatch(trace.trace_id)
    assert HEX16.fullmatch(trace.span_id) and trace.flags == 1


def test_a_served_request_continues_or_starts_a_trace() -> None:
    continued = server_trace(INCOMING)
    assert continued.trace_id == TRACE_ID
    assert continued.span_id != PARENT_ID and HEX16.fullmatch(continued.span_id)
    assert server_trace(f"00-{TRACE_ID}-{PARENT_ID}-00").flags == 0  # the caller's decision
    started = {server_trace(None).trace_id for _ in range(100)}
    assert len(started) == 100


def test_the_current_trace_belongs_to_its_block_and_outbound_calls_continue_it() -> None:
    assert current_trace() is None
    outside, add = outbound_trace(None)
    assert add and HEX32.fullmatch(outside.trace_id)
    request_trace = TraceContext(TRACE_ID, PARENT_ID, 1)
    with use_trace(request_trace):
        assert current_trace() == request_trace
        call, add = outbound_trace(None)
        assert add and call.trace_id == TRACE_ID and call.span_id != PARENT_ID
        # The caller's own header is kept, and names the call's span.
        given = "00-11111111111111111111111111111111-2222222222222222-01"
        call, add = outbound_trace(given)
        assert not add and call == parse_traceparent(given)
        # A malformed one is left alone too; the call is recorded under the current trace.
        call, add = outbound_trace("nonsense")
        assert not add and call.trace_id == TRACE_ID
    assert current_trace() is None


def test_the_current_opentelemetry_span_is_the_parent_outside_a_collector_request() -> None:
    otel = pytest.importorskip("opentelemetry.trace")
    span = otel.NonRecordingSpan(
        otel.SpanContext(
            trace_id=int(TRACE_ID, 16),
            span_id=int(PARENT_ID, 16),
            is_remote=False,
            trace_flags=otel.TraceFlags(1),
        )
    )
    with otel.use_span(span):
        assert current_trace() == TraceContext(TRACE_ID, PARENT_ID, 1)
        assert server_trace(None).trace_id == TRACE_ID
        # The incoming header still comes first, and the collector's own request next.
        other = "00-11111111111111111111111111111111-2222222222222222-01"
        assert server_trace(other).trace_id == "1" * 32
        mine = TraceContext("3" * 32, "4" * 16, 1)
        with use_trace(mine):
            assert current_trace() == mine
    with otel.use_span(otel.INVALID_SPAN):
        assert current_trace() is None


def test_the_collector_traces_without_opentelemetry_installed() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if it were not installed\n"
        "from logharbor.collector import current_trace\n"
        "from logharbor.collector.tracing import outbound_trace, server_trace\n"
        "assert current_trace() is None\n"
        "assert len(server_trace(None).trace_id) == 32\n"
        "assert outbound_trace(None)[1] is True\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["['opentelemetry']"]  # only the blocked entry


@pytest.fixture(scope="module")
def upstream() -> Iterator[Served]:
    """An API the app calls, uninstrumented: it answers with the traceparent it was sent."""
    app = Flask("upstream")

    @app.get("/echo")
    def echo() -> Any:
        return jsonify(traceparent=flask_request.headers.get("traceparent"))

    with serve_wsgi(app) as served:
        yield served


@pytest.fixture
def captured() -> Iterator[tuple[Collector, MemoryTransport]]:
    transport = MemoryTransport()
    collector = Collector(transport=transport, flush_interval=0.05)
    yield collector, transport
    collector.close()


def calling_api(collector: Collector, upstream: Served) -> FastAPI:
    """An app whose endpoints call ``upstream`` in each way the collector instruments."""
    app = FastAPI()
    echo = f"{upstream.url}/echo"

    @app.get("/httpx-sync")
    def httpx_sync() -> Any:  # run in a thread pool: the trace must follow it there
        with httpx.Client(transport=LogHarborTransport(collector)) as client:
            return client.get(echo).json()

    @app.get("/httpx-async")
    async def httpx_async() -> Any:
        async with httpx.AsyncClient(transport=AsyncLogHarborTransport(collector)) as client:
            return (await client.get(echo)).json()

    @app.get("/httpx-hooks")
    def httpx_hooks() -> Any:
        with httpx.Client(event_hooks=event_hooks(collector)) as client:
            return client.get(echo).json()

    @app.get("/requests")
    def with_requests() -> Any:
        with requests.Session() as session:
            instrument_session(session, collector)
            return session.get(echo).json()

    @app.get("/own-header")
    def own_header(request: Request) -> Any:
        given = request.query_params["traceparent"]
        with httpx.Client(transport=LogHarborTransport(collector)) as client:
            return client.get(echo, headers={"traceparent": given}).json()

    app.add_middleware(LogHarborASGIMiddleware, collector=collector)
    return app


def split(traceparent: str) -> tuple[str, str]:
    version, trace_id, span_id, flags = traceparent.split("-")
    assert (version, flags) == ("00", "01")
    return trace_id, span_id


@pytest.mark.parametrize("way", ["httpx-sync", "httpx-async", "httpx-hooks", "requests"])
def test_calls_made_while_serving_a_request_continue_its_trace(
    upstream: Served, captured: tuple[Collector, MemoryTransport], way: str
) -> None:
    collector, transport = captured
    with serve_asgi(calling_api(collector, upstream)) as api:
        continued = httpx.get(f"{api.url}/{way}", headers={"traceparent": INCOMING}).json()
        started = httpx.get(f"{api.url}/{way}").json()
    drain(collector, 4)
    served = {r["traceId"]: r for r in transport.records if r["domainUrl"] == api.url}
    made = {r["traceId"]: r for r in transport.records if r["domainUrl"] == upstream.url}
    assert len(served) == len(made) == 2

    # With an incoming traceparent: the same trace, a span of the server's own, and the call
    # a span of its own too, sent on as the parent of the next hop.
    trace_id, call_span = split(continued["traceparent"])
    assert trace_id == TRACE_ID
    request_record, call_record = served[TRACE_ID], made[TRACE_ID]
    assert request_record["pathnameUrl"] == f"/{way}"
    assert HEX16.fullmatch(request_record["spanId"])
    assert call_record["spanId"] == call_span
    assert len({PARENT_ID, request_record["spanId"], call_span}) == 3

    # Without one: the request starts a trace, and the call continues it.
    trace_id, call_span = split(started["traceparent"])
    assert trace_id != TRACE_ID and HEX32.fullmatch(trace_id)
    assert served[trace_id]["spanId"] != call_span
    assert made[trace_id]["spanId"] == call_span


def test_a_traceparent_the_caller_set_is_kept_and_recorded(
    upstream: Served, captured: tuple[Collector, MemoryTransport]
) -> None:
    collector, transport = captured
    given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with serve_asgi(calling_api(collector, upstream)) as api:
        echoed = httpx.get(
            f"{api.url}/own-header",
            params={"traceparent": given},
            headers={"traceparent": INCOMING},
        ).json()
    drain(collector, 2)
    assert echoed["traceparent"] == given
    (call,) = [r for r in transport.records if r["domainUrl"] == upstream.url]
    assert (call["traceId"], call["spanId"]) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
    )


def test_calls_outside_any_request_start_a_trace_of_their_own(
    upstream: Served, captured: tuple[Collector, MemoryTransport]
) -> None:
    collector, transport = captured
    with httpx.Client(transport=LogHarborTransport(collector)) as client:
        first = client.get(f"{upstream.url}/echo").json()["traceparent"]
        second = client.get(f"{upstream.url}/echo").json()["traceparent"]
    with requests.Session() as session:
        instrument_session(session, collector)
        third = session.get(f"{upstream.url}/echo").json()["traceparent"]
    drain(collector, 3)
    sent = [split(header) for header in (first, second, third)]
    assert len({trace_id for trace_id, _ in sent}) == 3
    assert [(r["traceId"], r["spanId"]) for r in transport.records] == sent


def test_concurrent_asgi_requests_each_keep_their_own_trace(
    upstream: Served, captured: tuple[Collector, MemoryTransport]
) -> None:
    collector, transport = captured
    count = 8
    app = FastAPI()
    arrived = 0
    all_in = asyncio.Event()

    @app.get("/work/{n}")
    async def work(n: int) -> Any:
        nonlocal arrived
        arrived += 1
        if arrived == count:
            all_in.set()
        # Every request is in flight at once before any calls out: their traces interleave.
        await asyncio.wait_for(all_in.wait(), 30)
        async with httpx.AsyncClient(transport=AsyncLogHarborTransport(collector)) as client:
            return (await client.get(f"{upstream.url}/echo")).json()

    app.add_middleware(LogHarborASGIMiddleware, collector=collector)
    incoming = [f"00-{n:032x}-{n + 100:016x}-01" for n in range(1, count + 1)]

    async def call_all(url: str) -> list[Any]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            responses = await asyncio.gather(
                *(
                    client.get(f"/work/{n}", headers={"traceparent": header})
                    for n, header in enumerate(incoming)
                )
            )
        return [response.json() for response in responses]

    with serve_asgi(app) as api:
        echoed = asyncio.run(call_all(api.url))
    drain(collector, 2 * count)
    for n, answer in enumerate(echoed):
        assert split(answer["traceparent"])[0] == f"{n + 1:032x}"
    served = {r["pathnameUrl"]: r for r in transport.records if r["domainUrl"] == api.url}
    made = {r["spanId"]: r for r in transport.records if r["domainUrl"] == upstream.url}
    for n in range(count):
        assert served[f"/work/{n}"]["traceId"] == f"{n + 1:032x}"
        _, call_span = split(echoed[n]["traceparent"])
        assert made[call_span]["traceId"] == f"{n + 1:032x}"


def test_threaded_wsgi_requests_each_keep_their_own_trace(
    upstream: Served, captured: tuple[Collector, MemoryTransport]
) -> None:
    collector, transport = captured
    count = 6
    all_in = threading.Barrier(count, timeout=30)
    app = Flask("threads")

    @app.get("/work/<int:n>")
    def work(n: int) -> Any:
        all_in.wait()  # every request is in its own server thread at once
        with requests.Session() as session:
            instrument_session(session, collector)
            return session.get(f"{upstream.url}/echo").json()

    instrument(app, collector)
    incoming = [f"00-{n:032x}-{n + 100:016x}-01" for n in range(1, count + 1)]
    with serve_wsgi(app) as site, ThreadPoolExecutor(count) as pool:
        futures = [
            pool.submit(
                httpx.get, f"{site.url}/work/{n}", headers={"traceparent": header}, timeout=60
            )
            for n, header in enumerate(incoming)
        ]
        echoed = [future.result().json() for future in futures]
    drain(collector, 2 * count)
    served = {r["pathnameUrl"]: r for r in transport.records if r["domainUrl"] == site.url}
    made = {r["spanId"]: r for r in transport.records if r["domainUrl"] == upstream.url}
    for n, answer in enumerate(echoed):
        trace_id, call_span = split(answer["traceparent"])
        assert trace_id == f"{n + 1:032x}"
        assert served[f"/work/{n}"]["traceId"] == trace_id
        assert made[call_span]["traceId"] == trace_id
        assert served[f"/work/{n}"]["spanId"] != call_span


def test_a_malformed_traceparent_on_a_request_starts_a_new_trace(
    upstream: Served, captured: tuple[Collector, MemoryTransport]
) -> None:
    collector, transport = captured
    with serve_asgi(calling_api(collector, upstream)) as api:
        echoed = httpx.get(
            f"{api.url}/httpx-async", headers={"traceparent": INCOMING.upper()}
        ).json()
    drain(collector, 2)
    trace_id, call_span = split(echoed["traceparent"])
    assert trace_id != TRACE_ID
    (served,) = [r for r in transport.records if r["domainUrl"] == api.url]
    (call,) = [r for r in transport.records if r["domainUrl"] == upstream.url]
    assert served["traceId"] == call["traceId"] == trace_id
    assert call["spanId"] == call_span


def test_compose_shaped_records_get_the_current_trace(
    captured: tuple[Collector, MemoryTransport],
) -> None:
    collector, transport = captured
    base = {"domainUrl": "http://x", "pathnameUrl": "/", "status": 200, "method": "GET"}
    with use_trace(TraceContext(TRACE_ID, PARENT_ID, 1)):
        assert collector.record(base)
    assert collector.record({**base, "traceId": "a" * 32, "spanId": "b" * 16})
    assert collector.record(base)
    assert collector.flush(30)
    inside, given, outside = transport.records
    assert inside["traceId"] == TRACE_ID and inside["spanId"] not in (PARENT_ID, None)
    assert (given["traceId"], given["spanId"]) == ("a" * 32, "b" * 16)
    assert HEX32.fullmatch(outside["traceId"]) and outside["traceId"] != TRACE_ID
    assert "traceId" not in base  # the caller's dict is left as it was
