"""WSGI middleware: Flask, Django (WSGI), Bottle, Pyramid, ...

It wraps ``start_response`` for the status and headers and the response iterable to time the
response until the server has sent it (``close()``). A framework that knows the matched route
puts it in ``environ["logharbor.route"]`` (see ``logharbor.collector.flask``); the user id
may be put in ``environ["logharbor.user_id"]`` the same way, or returned by ``user_id(environ)``.

Each request continues the trace of its ``traceparent`` header or starts one; the trace is
current (``logharbor.collector.tracing.current_trace()``) in the thread serving the request
while the app is called and while its response is iterated and closed, so that outbound calls
continue it. An exception the app raises is sent with the record (type, message, traceback;
see ``logharbor.collector.exceptions``) and raised on to the server unchanged. A framework
that turns exceptions into a 500 itself (Flask) may hand the exception over in
``environ["logharbor.exception"]``, as ``logharbor.collector.flask`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextvars import Token
from time import perf_counter
from typing import Any

from logharbor.collector import current_request, tracing
from logharbor.collector.collector import Collector
from logharbor.collector.exceptions import capture_exception
from logharbor.collector.records import Body, Exchange

log = logging.getLogger("logharbor.collector")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

DEFAULT_MAX_BODY_BYTES = 16 * 1024
ROUTE_KEY = "logharbor.route"
USER_KEY = "logharbor.user_id"
EXCEPTION_KEY = "logharbor.exception"


def request_headers(environ: Environ) -> list[tuple[str, str]]:
    headers = [
        (key[5:].replace("_", "-"), value)
        for key, value in environ.items()
        if key.startswith("HTTP_") and isinstance(value, str)
    ]
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            headers.append((name, environ[key]))
    return headers


def _wsgi_str(value: str) -> str:
    # PEP 3333 hands paths over as latin-1 decoded bytes; the URL was UTF-8.
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


class LogHarborWSGIMiddleware:
    """Records every HTTP request the wrapped WSGI app serves into ``collector``.

    ``app.wsgi_app = LogHarborWSGIMiddleware(app.wsgi_app, collector)`` for Flask (or use
    ``logharbor.collector.flask.instrument`` to get route templates too).
    """

    def __init__(
        self,
        app: WSGIApp,
        collector: Collector,
        *,
        capture_bodies: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        user_id: Callable[[Environ], str | None] | None = None,
        exclude_paths: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.app = app
        self.collector = collector
        self.capture_bodies = capture_bodies
        self.max_body_bytes = max_body_bytes
        self.user_id = user_id
        self.exclude_paths = tuple(exclude_paths)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.exclude_paths and environ.get("PATH_INFO", "").startswith(self.exclude_paths):
            return self.app(environ, start_response)
        state = _State(self.max_body_bytes if self.capture_bodies else 0)

        def capturing_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            state.status_line = status
            state.headers = headers
            return start_response(status, headers, exc_info)

        request_body = None
        if self.capture_bodies and environ.get("wsgi.input") is not None:
            request_body = Body(self.max_body_bytes)
            environ["wsgi.input"] = _CapturingInput(environ["wsgi.input"], request_body)
        token = request_token = None
        try:
            state.trace = tracing.server_trace(environ.get("HTTP_TRACEPARENT"))
            token = tracing.enter(state.trace)
            # Read when asked: Flask's hook notes the route once it has matched it.
            state.request = current_request.CurrentRequest(lambda: _route(environ))
            request_token = current_request.enter(state.request)
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)
        started = perf_counter()
        try:
            result = self.app(environ, capturing_start_response)
        except BaseException as error:
            state.fail(error)
            self._record(environ, state, started, request_body)
            raise
        finally:
            if token is not None:
                tracing.leave(token)
            if request_token is not None:
                current_request.leave(request_token)
        return _ClosingIterable(
            result, lambda: self._record(environ, state, started, request_body), state
        )

    def _record(self, environ: Environ, state: _State, started: float, body: Body | None) -> None:
        try:
            elapsed = (perf_counter() - started) * 1000.0
            status = 500 if state.error and not state.status_line else state.status
            # Popped: through its traceback a noted exception holds the app's frames.
            noted = environ.pop(EXCEPTION_KEY, None)
            error = state.exception or noted
            exception = None
            if isinstance(error, Exception) and status >= 500:
                # Summarised here, while the traceback is at hand; formatted in the sender thread.
                exception = capture_exception(error)
            trace = state.trace
            host = environ.get("HTTP_HOST") or (
                f"{environ.get('SERVER_NAME', 'unknown')}:{environ.get('SERVER_PORT', '80')}"
            )
            path = _wsgi_str(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
            request = state.request
            self.collector.record(
                Exchange(
                    method=environ.get("REQUEST_METHOD", "GET"),
                    scheme=environ.get("wsgi.url_scheme", "http"),
                    host=host,
                    path=path,
                    query=environ.get("QUERY_STRING", ""),
                    status=status,
                    elapsed_ms=elapsed,
                    request_headers=request_headers(environ),
                    response_headers=state.headers,
                    request_body=body,
                    response_body=state.body,
                    route=_route(environ),
                    user_id=self._user(environ),
                    trace_id=trace.trace_id if trace else None,
                    span_id=trace.span_id if trace else None,
                    exception=exception,
                    record_id=request.known_record_id if request is not None else None,
                )
            )
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)

    def _user(self, environ: Environ) -> str | None:
        value = environ.get(USER_KEY)
        if value is None and self.user_id is not None:
            try:
                value = self.user_id(environ)
            except Exception:
                log.debug("LogHarbor user_id callback failed (ignored)", exc_info=True)
        return None if value is None else str(value)


def _route(environ: Environ) -> str | None:
    route = environ.get(ROUTE_KEY)
    if route and environ.get("SCRIPT_NAME"):
        route = _wsgi_str(environ["SCRIPT_NAME"]) + route
    return route if isinstance(route, str) else None


class _State:
    __slots__ = ("body", "error", "exception", "headers", "request", "status_line", "trace")

    def __init__(self, max_body_bytes: int) -> None:
        self.status_line = ""
        self.headers: list[tuple[str, str]] = []
        self.body = Body(max_body_bytes) if max_body_bytes else None
        self.error = False
        self.exception: Exception | None = None
        self.trace: tracing.TraceContext | None = None
        self.request: current_request.CurrentRequest | None = None

    def fail(self, error: BaseException) -> None:
        self.error = True
        # Not an exit or an interrupt: those are the process's doing, not the app's error.
        if isinstance(error, Exception):
            self.exception = error

    @property
    def status(self) -> int:
        try:
            return int(self.status_line[:3])
        except ValueError:
            return 500


class _ClosingIterable:
    """The app's response iterable; records the exchange when the server closes it."""

    __slots__ = ("_done", "_iterator", "_on_close", "_result", "_state")

    def __init__(self, result: Iterable[bytes], on_close: Callable[[], None], state: _State):
        self._result = result
        self._on_close = on_close
        self._state = state
        self._done = False
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        # A streamed body is the app's code running too (a generator view), so its trace is
        # current while the next chunk is made; entered and left within each call, so that no
        # token outlives it (a generator holding one could reset a later request's trace).
        tokens = self._enter()
        try:
            if self._iterator is None:
                self._iterator = iter(self._result)
            chunk = next(self._iterator)
        except StopIteration:
            raise
        except BaseException as error:
            self._state.fail(error)
            raise
        finally:
            self._leave(tokens)
        body = self._state.body
        if body is not None:
            body.add(chunk)
        return chunk

    def close(self) -> None:
        tokens = self._enter()
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._leave(tokens)
            if not self._done:
                self._done = True
                self._on_close()

    def _enter(self) -> _Tokens | None:
        trace, request = self._state.trace, self._state.request
        if trace is None or request is None:
            return None
        return tracing.enter(trace), current_request.enter(request)

    @staticmethod
    def _leave(tokens: _Tokens | None) -> None:
        if tokens is not None:
            tracing.leave(tokens[0])
            current_request.leave(tokens[1])


_Tokens = tuple[Token[tracing.TraceContext | None], Token[current_request.CurrentRequest | None]]


class _CapturingInput:
    """``wsgi.input`` that keeps the head of what the app reads."""

    def __init__(self, stream: Any, body: Body) -> None:
        self._stream = stream
        self._body = body

    def read(self, *args: Any) -> bytes:
        data: bytes = self._stream.read(*args)
        self._body.add(data)
        return data

    def readinto(self, buffer: Any) -> int:
        if not hasattr(self._stream, "readinto"):
            data = self.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        count: int = self._stream.readinto(buffer)
        if count:
            self._body.add(bytes(memoryview(buffer)[:count]))
        return count

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._stream.readline(*args)
        self._body.add(data)
        return data

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(*args)
        for line in lines:
            self._body.add(line)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self._body.add(line)
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
