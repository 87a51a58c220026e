"""Pure ASGI middleware: FastAPI, Starlette, Litestar, Django (ASGI), Quart, ...

It wraps ``send`` to learn the status and headers and to time the response, and (when bodies
are captured) ``receive`` for the request body. Not ``BaseHTTPMiddleware``, which buffers
streaming responses and breaks contextvars. The work done on the request path is a handful of
attribute writes; turning the capture into a record happens in the collector's thread.

Each request continues the trace of its ``traceparent`` header or starts one; the trace is
current (``logharbor.collector.tracing.current_trace()``) while the app serves the request,
including its sync endpoints run in a thread pool and its background tasks, so that outbound
calls continue it. An exception the app raises through the middleware is sent with the
record (type, message, traceback; see ``logharbor.collector.exceptions``) and raised on to
the server unchanged.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter
from typing import Any

from logharbor.collector import current_request, tracing
from logharbor.collector.collector import Collector
from logharbor.collector.exceptions import capture_exception
from logharbor.collector.records import Body, Exchange

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("logharbor.collector")

DEFAULT_MAX_BODY_BYTES = 16 * 1024
# Litestar writes typed templates ("/items/{item_id:int}"); the type is not part of the route.
_PARAM_TYPE = re.compile(r"\{([^}:]+):[^}]*\}")


def route_template(scope: Scope, root_path: str, path: str) -> str | None:
    """The matched route's template, as the framework left it in the scope, written as a path of
    the same URL as ``path`` (the path the request arrived with)."""
    # A server's root_path (an app served under /shop) is part of the recorded pathname when the
    # server put it into ``path``, as ASGI servers now do, so it is part of the route as well.
    base = ""
    if root_path and (path == root_path or path.startswith(root_path.rstrip("/") + "/")):
        base = root_path.rstrip("/")
    route = scope.get("route")
    if route is not None:  # Starlette, FastAPI
        return _starlette_template(scope, route, root_path, base)
    template = scope.get("path_template")  # Litestar; "" for a mounted ASGI app
    if isinstance(template, str) and template:
        return base + _PARAM_TYPE.sub(r"{\1}", template)
    template = scope.get("logharbor.route")  # set by the app itself, any framework
    return template if isinstance(template, str) else None


def _starlette_template(scope: Scope, route: Any, root_path: str, base: str) -> str | None:
    routing = sys.modules.get("starlette.routing")
    mount = getattr(routing, "Mount", None)
    if mount is not None and isinstance(route, mount):
        # A mounted app that routes nothing itself (StaticFiles, a WSGI app): its paths have no
        # template. (A mounted router puts its own matched route in the scope.)
        return None
    fastapi = scope.get("fastapi")
    context = fastapi.get("effective_route_context") if isinstance(fastapi, dict) else None
    if context is not None and getattr(context, "original_route", None) is route:
        # Newer FastAPI includes a router's routes without copying them: the scope names the
        # router's own route ("/orders/{id}"); the include's prefix is only in this context.
        route = getattr(context, "starlette_route", None) or context
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return None
    # A route inside Mount("/api", ...) knows only its own part; the mount's part is what the
    # routing added to root_path.
    mounted = scope.get("root_path", "")
    prefix = mounted[len(root_path) :] if mounted.startswith(root_path) else ""
    return base + prefix + template


class LogHarborASGIMiddleware:
    """Records every HTTP request the wrapped app serves into ``collector``.

    ``capture_bodies`` keeps request and response bodies up to ``max_body_bytes`` each.
    ``user_id(scope)`` names the app's user (e.g. from ``scope["state"]``), called after the
    response. Paths starting with one of ``exclude_paths`` are not recorded.
    """

    def __init__(
        self,
        app: ASGIApp,
        collector: Collector,
        *,
        capture_bodies: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        user_id: Callable[[Scope], str | None] | None = None,
        exclude_paths: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.app = app
        self.collector = collector
        self.capture_bodies = capture_bodies
        self.max_body_bytes = max_body_bytes
        self.user_id = user_id
        self.exclude_paths = tuple(exclude_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self.exclude_paths and scope["path"].startswith(self.exclude_paths)
        ):
            await self.app(scope, receive, send)
            return
        capture = _Capture(send, self.max_body_bytes if self.capture_bodies else 0)
        # Taken now: a router may rewrite them (Litestar strips root_path from "path", and a
        # Litestar mount leaves only the part below the mount).
        root_path = scope.get("root_path", "")
        path = scope["path"]
        if self.capture_bodies:
            request_body = Body(self.max_body_bytes)

            async def receive_and_capture() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    request_body.add(message.get("body", b""))
                return message

            app_receive: Receive = receive_and_capture
        else:
            request_body = None
            app_receive = receive
        trace = token = request = request_token = None
        try:
            trace = tracing.server_trace(_traceparent(scope))
            token = tracing.enter(trace)
            # Read when asked: the router puts the matched route into the scope later on.
            request = current_request.CurrentRequest(lambda: route_template(scope, root_path, path))
            request_token = current_request.enter(request)
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)
        started = perf_counter()
        try:
            await self.app(scope, app_receive, capture.send)
        except BaseException as error:
            if capture.status == 0:
                capture.status = 500
            # Not a cancellation or an exit: those are the server's doing, not the app's error.
            if isinstance(error, Exception):
                capture.error = error
            raise
        finally:
            if token is not None:
                tracing.leave(token)
            if request_token is not None:
                current_request.leave(request_token)
            try:
                self._record(scope, capture, started, root_path, path, request_body, trace, request)
            except Exception:
                log.debug("LogHarbor collector error (ignored)", exc_info=True)

    def _record(
        self,
        scope: Scope,
        capture: _Capture,
        started: float,
        root_path: str,
        path: str,
        request_body: Body | None,
        trace: tracing.TraceContext | None,
        request: current_request.CurrentRequest | None,
    ) -> None:
        ended = capture.ended or perf_counter()
        headers = scope["headers"]
        raw_host = _header(scope, b"host")
        host = raw_host.decode("latin-1") if raw_host else ""
        if not host:
            server = scope.get("server")
            host = f"{server[0]}:{server[1]}" if server else "unknown"
        status = capture.status or 500
        exception = None
        if capture.error is not None and status >= 500:
            # Summarised here, while the traceback is at hand; formatted in the sender thread.
            exception = capture_exception(capture.error)
        self.collector.record(
            Exchange(
                method=scope["method"],
                scheme=scope.get("scheme", "http"),
                host=host,
                path=path,
                query=scope.get("query_string", b""),
                status=status,
                elapsed_ms=(ended - started) * 1000.0,
                request_headers=headers,
                response_headers=capture.headers,
                request_body=request_body,
                response_body=capture.body,
                route=route_template(scope, root_path, path),
                user_id=self._user(scope),
                trace_id=trace.trace_id if trace else None,
                span_id=trace.span_id if trace else None,
                exception=exception,
                record_id=request.known_record_id if request is not None else None,
            )
        )

    def _user(self, scope: Scope) -> str | None:
        if self.user_id is None:
            return None
        try:
            value = self.user_id(scope)
        except Exception:
            log.debug("LogHarbor user_id callback failed (ignored)", exc_info=True)
            return None
        return None if value is None else str(value)


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case, as ASGI servers give names)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _traceparent(scope: Scope) -> bytes | None:
    found = None
    for key, value in scope["headers"]:
        if key == b"traceparent":
            if found is not None:
                return None  # several: one header joined from them would be malformed
            found = bytes(value)
    return found


class _Capture:
    """What the app sent: status, headers, the body's head, when the response ended, and the
    exception the app raised, if any."""

    __slots__ = ("_send", "body", "ended", "error", "headers", "status")

    def __init__(self, send: Send, max_body_bytes: int) -> None:
        self._send = send
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = Body(max_body_bytes) if max_body_bytes else None
        self.ended = 0.0
        self.error: Exception | None = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            self.headers = message.get("headers", [])
        elif kind == "http.response.body":
            if self.body is not None:
                self.body.add(message.get("body", b""))
            if not message.get("more_body", False):
                await self._send(message)
                self.ended = perf_counter()
                return
        await self._send(message)
