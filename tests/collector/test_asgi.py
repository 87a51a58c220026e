"""ASGI middleware on real apps (FastAPI, Starlette, Litestar) served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from litestar import Litestar, get, post
from litestar.middleware import DefineMiddleware
from litestar.params import FromPath, JSONBody
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from collector.harness import MemoryTransport, StandInServer, drain, serve_asgi
from fixtures.network import free_port
from fixtures.waiting import wait_until
from logharbor.collector import Collector, LogHarborASGIMiddleware, current_trace


def fastapi_app(collector: Collector, **options: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    def get_item(item_id: int, request: Request) -> dict[str, Any]:
        request.state.user_id = f"user-{item_id}"
        return {"id": item_id, "token": "server-secret"}

    @app.post("/login")
    async def login(request: Request) -> dict[str, Any]:
        body = await request.json()
        return {"user": body.get("user"), "ok": True}

    @app.get("/missing")
    def missing() -> None:
        raise HTTPException(404, "nope")

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("the view crashed")

    @app.get("/stream")
    def stream() -> StreamingResponse:
        def chunks() -> Iterator[bytes]:
            for n in range(100):
                yield f"line {n}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/health")
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    app.add_middleware(LogHarborASGIMiddleware, collector=collector, **options)
    return app


@pytest.fixture
def captured() -> Iterator[tuple[Collector, MemoryTransport]]:
    transport = MemoryTransport()
    collector = Collector(transport=transport, flush_interval=0.05)
    yield collector, transport
    collector.close()


def test_fastapi_requests_are_recorded_with_route_status_and_latency(
    captured: tuple[Collector, MemoryTransport],
) -> None:
    collector, transport = captured
    app = fastapi_app(
        collector,
        user_id=lambda scope: scope.get("state", {}).get("user_id"),
        exclude_paths=["/health"],
    )
    with serve_asgi(app) as served, httpx.Client(base_url=served.url) as client:
        response = client.get(
            "/items/42?page=2&token=abc",
            headers={"Authorization": "Bearer app-user-token", "X-Trace": "t1"},
        )
        assert response.status_code == 200
        assert response.json() == {"id": 42, "token": "server-secret"}
        assert client.get("/missing").status_code == 404
        assert client.get("/health").status_code == 200
        assert client.get("/no/such/route").status_code == 404
        # Last: uvicorn closes the connection after an app's exception.
        assert client.get("/crash").status_code == 500
    drain(collector, 4)
    by_path = {r["pathnameUrl"]: r for r in transport.records}
    assert set(by_path) == {"/items/42", "/missing", "/crash", "/no/such/route"}
    item = by_path["/items/42"]
    host = served.url.removeprefix("http://")
    assert item["domainUrl"] == f"http://{host}"
    assert (item["method"], item["status"], item["protocol"]) == ("GET", 200, "http")
    assert item["routeTemplate"] == "/items/{item_id}"
    assert item["elapsedTime"] > 0
    assert item["trafficUserId"] == "user-42"
    assert item["queryParams"] == {"page": "2", "token": "****"}
    assert item["requestHeaders"]["authorization"] == "****"
    assert item["requestHeaders"]["x-trace"] == "t1"
    assert item["responseHeaders"]["content-type"] == "application/json"
    # Bodies are off by default.
    assert item["requestBody"] is None and item["responseBody"] is None
    assert by_path["/missing"]["status"] == 404
    assert by_path["/missing"]["routeTemplate"] == "/missing"
    assert by_path["/crash"]["status"] == 500
    assert by_path["/no/such/route"]["routeTemplate"] is None


def test_fastapi_bodies_when_asked_masked_and_capped(
    captured: tuple[Collector, MemoryTransport],
) -> None:
    collector, transport = captured
    app = fastapi_app(collector, capture_bodies=True, max_body_bytes=64)
    with serve_asgi(app) as served, httpx.Client(base_url=served.url) as client:
        login = client.post("/login", json={"user": "jane", "password": "hunter2"})
        assert login.json() == {"user": "jane", "ok": True}
        item = client.get("/items/7")
        assert item.json()["token"] == "server-secret"
        stream = client.get("/stream")
        assert stream.text.count("\n") == 100
    drain(collector, 3)
    by_path = {r["pathnameUrl"]: r for r in transport.records}
    assert by_path["/login"]["requestBody"] == {"user": "jane", "password": "****"}
    assert by_path["/login"]["responseBody"] == {"user": "jane", "ok": True}
    assert by_path["/items/7"]["responseBody"] == {"id": 7, "token": "****"}
    streamed = by_path["/stream"]["responseBody"]
    assert streamed.startswith("line 0\nline 1\n")
    assert streamed.endswith("[truncated: 790 bytes in total]")
    assert "hunter2" not in str(transport.records)


def test_the_app_answers_while_the_server_is_stuck_and_losses_are_counted(
    stand_in: StandInServer,
) -> None:
    stand_in.hold.clear()  # LogHarbor accepted the connection and never answers
    collector = Collector(
        stand_in.url,
        api_key="lhk_x",
        traffic_source_id="0197548f-0e8e-7550-b283-f26fd98a9423",
        max_queue=20,
        batch_size=10,
        flush_interval=0.01,
        timeout=60,
    )
    app = fastapi_app(collector)
    with serve_asgi(app) as served:
        # A client timeout far below the server's stall: a request that waited on the
        # collector would fail here.
        with httpx.Client(base_url=served.url, timeout=10) as client:
            for n in range(300):
                assert client.get(f"/items/{n}").status_code == 200
        wait_until(lambda: collector.stats().accepted == 300, "300 records")
        assert stand_in.waiting >= 1, "the collector's batch is still stuck in the server"
        assert stand_in.hits == []
        stats = collector.stats()
        assert stats.accepted == 300
        assert stats.dropped >= 300 - 20 - 10
    stand_in.hold.set()
    assert collector.flush(30)
    stats = collector.stats()
    assert stats.sent + stats.dropped + stats.failed == 300
    assert stats.sent == len(stand_in.records()) > 0
    collector.close()


def test_the_app_answers_while_the_server_is_down() -> None:
    collector = Collector(
        f"http://127.0.0.1:{free_port()}",
        api_key="lhk_x",
        traffic_source_id="0197548f-0e8e-7550-b283-f26fd98a9423",
        max_queue=50,
        max_attempts=2,
        backoff_base=0.01,
        flush_interval=0.01,
    )
    app = fastapi_app(collector)
    with serve_asgi(app) as served, httpx.Client(base_url=served.url, timeout=10) as client:
        for n in range(200):
            assert client.get(f"/items/{n}").status_code == 200
    drain(collector, 200)
    stats = collector.stats()
    assert stats.sent == 0
    assert stats.dropped + stats.failed == 200
    collector.close()


def test_a_broken_collector_or_callback_never_breaks_the_app() -> None:
    class Exploding:
        def send(self, records: Any) -> Any:
            raise RuntimeError("transport down")

        def close(self) -> None:
            pass

    collector = Collector(transport=Exploding(), flush_interval=0.01, max_attempts=1)

    def bad_user(scope: Any) -> str:
        raise KeyError("no user")

    app = fastapi_app(collector, user_id=bad_user, capture_bodies=True)
    with serve_asgi(app) as served, httpx.Client(base_url=served.url) as client:
        for n in range(20):
            assert client.get(f"/items/{n}").json()["id"] == n
        assert client.post("/login", json={"user": "x"}).status_code == 200
    drain(collector, 21)
    assert collector.stats().failed == 21
    collector.close()


def test_starlette_mounted_routes_get_their_full_template(
    captured: tuple[Collector, MemoryTransport],
) -> None:
    collector, transport = captured

    async def user(request: Any) -> JSONResponse:
        return JSONResponse({"id": request.path_params["user_id"]})

    app = Starlette(routes=[Mount("/api/v1", routes=[Route("/users/{user_id}", user)])])
    with serve_asgi(LogHarborASGIMiddleware(app, collector)) as served:
        assert httpx.get(f"{served.url}/api/v1/users/9").json() == {"id": "9"}
    drain(collector, 1)
    (only,) = transport.records
    assert only["pathnameUrl"] == "/api/v1/users/9"
    assert only["routeTemplate"] == "/api/v1/users/{user_id}"


def test_litestar_app(captured: tuple[Collector, MemoryTransport]) -> None:
    collector, transport = captured

    @get("/orders/{order_id:int}")
    async def order(order_id: FromPath[int]) -> dict[str, int]:
        return {"id": order_id}

    @post("/orders")
    async def create(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        return {"created": data["sku"]}

    app = Litestar(
        route_handlers=[order, create],
        middleware=[
            DefineMiddleware(LogHarborASGIMiddleware, collector=collector, capture_bodies=True)
        ],
    )
    with serve_asgi(app) as served, httpx.Client(base_url=served.url) as client:
        assert client.get("/orders/5").json() == {"id": 5}
        created = client.post("/orders", json={"sku": "A1", "secret": "s"})
        assert created.status_code == 201
    drain(collector, 2)
    by_path = {(r["method"], r["pathnameUrl"]): r for r in transport.records}
    assert by_path["GET", "/orders/5"]["routeTemplate"] == "/orders/{order_id}"
    assert by_path["GET", "/orders/5"]["status"] == 200
    posted = by_path["POST", "/orders"]
    assert posted["status"] == 201
    assert posted["requestBody"] == {"sku": "A1", "secret": "****"}
    assert posted["responseBody"] == {"created": "A1"}


def test_lifespan_and_websocket_scopes_pass_through() -> None:
    transport = MemoryTransport()
    collector = Collector(transport=transport)
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = LogHarborASGIMiddleware(app, collector)

    asyncio.run(middleware({"type": "lifespan"}, None, None))  # type: ignore[arg-type]
    asyncio.run(middleware({"type": "websocket", "path": "/ws"}, None, None))  # type: ignore[arg-type]
    assert seen == ["lifespan", "websocket"]
    assert collector.flush(1)
    assert transport.records == []
    collector.close()


class PaymentFailed(Exception):
    """An app's own exception: sent as ``module.QualName``."""


INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_request_continues_its_trace_and_an_exception_is_sent_with_its_record(
    captured: tuple[Collector, MemoryTransport],
) -> None:
    collector, transport = captured
    app = FastAPI()
    seen: dict[str, Any] = {}

    @app.get("/pay/{order}")
    async def pay(order: int) -> None:
        seen["trace"] = current_trace()
        raise PaymentFailed(f"order {order} declined: token=tok_live_42")

    @app.get("/gone")
    def gone() -> None:
        raise HTTPException(503, "maintenance")  # answered by the framework: nothing raised

    app.add_middleware(LogHarborASGIMiddleware, collector=collector)
    with serve_asgi(app) as served, httpx.Client(base_url=served.url) as client:
        assert client.get("/gone", headers={"traceparent": "00-bad"}).status_code == 503
        # Starlette's outermost middleware still turns the exception into its 500.
        response = client.get("/pay/7", headers={"traceparent": INCOMING})
        assert response.status_code == 500
        assert response.text == "Internal Server Error"
    drain(collector, 2)
    by_path = {r["pathnameUrl"]: r for r in transport.records}
    pay_record = by_path["/pay/7"]
    assert pay_record["status"] == 500
    assert pay_record["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert pay_record["spanId"] not in ("00f067aa0ba902b7", "")
    assert seen["trace"].trace_id == pay_record["traceId"]
    assert seen["trace"].span_id == pay_record["spanId"]
    exception = pay_record["exception"]
    assert exception["type"] == f"{__name__}.PaymentFailed"
    assert exception["message"] == "order 7 declined: token=****"
    assert exception["frames"][-1]["function"] == "pay"
    assert exception["frames"][-1]["file"] == __file__
    assert exception["stacktrace"].endswith(f"PaymentFailed: {exception['message']}\n")
    assert "tok_live_42" not in str(transport.records)
    gone_record = by_path["/gone"]
    assert gone_record["status"] == 503 and "exception" not in gone_record
    assert len(gone_record["traceId"]) == 32 and gone_record["traceId"] != pay_record["traceId"]


def test_the_exception_reaches_the_server_unchanged_and_only_a_5xx_carries_it() -> None:
    transport = MemoryTransport()
    collector = Collector(transport=transport, flush_interval=0.05)
    errors: dict[str, BaseException] = {
        "/boom": PaymentFailed("declined"),
        "/late": PaymentFailed("after the response started"),
        "/cancelled": asyncio.CancelledError(),
    }

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/late":
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise errors[scope["path"]]

    middleware = LogHarborASGIMiddleware(app, collector)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    for path, error in errors.items():
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": b"",
            "headers": [(b"host", b"shop.test"), (b"traceparent", INCOMING.encode())],
        }
        with pytest.raises(type(error)) as raised:
            asyncio.run(middleware(scope, receive, send))
        assert raised.value is error
    assert collector.flush(30)
    by_path = {r["pathnameUrl"]: r for r in transport.records}
    assert by_path["/boom"]["status"] == 500
    assert by_path["/boom"]["exception"]["message"] == "declined"
    assert by_path["/boom"]["exception"]["frames"][-1]["function"] == "app"
    # Answered 200 before it failed: not a server error; a cancellation is not the app's.
    assert by_path["/late"]["status"] == 200 and "exception" not in by_path["/late"]
    assert by_path["/cancelled"]["status"] == 500 and "exception" not in by_path["/cancelled"]
    assert {r["traceId"] for r in transport.records} == {"4bf92f3577b34da6a3ce929d0e0e4736"}
    assert len({r["spanId"] for r in transport.records}) == 3
    collector.close()
