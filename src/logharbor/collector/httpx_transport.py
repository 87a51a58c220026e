"""httpx: record the calls an app makes, through a wrapping transport (sync and async).

    client = httpx.Client(transport=LogHarborTransport(collector))
    client = httpx.AsyncClient(transport=AsyncLogHarborTransport(collector))

The exchange is recorded when the response is closed (``client.get`` reads and closes it;
with ``client.stream`` it is when the block ends), so the latency covers the body too. A call
that fails before any response (connection refused, timeout) is not recorded: there is no
status to record.

Each call is traced (W3C Trace Context): a ``traceparent`` header is added carrying the trace
current where the call is made (``logharbor.collector.tracing.current_trace()``: the request
the app is serving, when its middleware is the collector's) with a new span id for the call,
or a new trace outside any request; the record carries the same ids. A ``traceparent`` the
caller set is never replaced: the call is recorded as the span it names. A redirect's later
hops carry the first hop's header (httpx copies the headers), so they are recorded under the
same span.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from time import perf_counter
from typing import Any

import httpx

from logharbor.collector import tracing
from logharbor.collector.collector import Collector
from logharbor.collector.records import Body, Exchange

log = logging.getLogger("logharbor.collector")

DEFAULT_MAX_BODY_BYTES = 16 * 1024


class _Recorder:
    def __init__(
        self,
        collector: Collector,
        capture_bodies: bool,
        max_body_bytes: int,
        user_id: str | None,
    ) -> None:
        self.collector = collector
        self.capture_bodies = capture_bodies
        self.max_body_bytes = max_body_bytes
        self.user_id = user_id

    def trace(self, request: httpx.Request) -> tracing.TraceContext | None:
        """The call's span; its ``traceparent`` is added to ``request`` unless one is there."""
        try:
            trace, add = tracing.outbound_trace(request.headers.get(tracing.TRACEPARENT))
            if add:
                request.headers[tracing.TRACEPARENT] = trace.traceparent
            return trace
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)
            return None

    def request_body(self, request: httpx.Request) -> Body | None:
        if not self.capture_bodies:
            return None
        body = Body(self.max_body_bytes)
        try:
            body.add(request.content)
        except httpx.RequestNotRead:  # a streaming upload: its size is all we know
            length = request.headers.get("content-length")
            body.size = int(length) if length and length.isdigit() else 0
        return body

    def record(
        self,
        request: httpx.Request,
        response: httpx.Response,
        started: float,
        request_body: Body | None,
        response_body: Body | None,
        trace: tracing.TraceContext | None,
    ) -> None:
        try:
            url = request.url
            host = url.host if url.port is None else f"{url.host}:{url.port}"
            self.collector.record(
                Exchange(
                    method=request.method,
                    scheme=url.scheme,
                    host=host,
                    path=url.path,
                    query=url.query,
                    status=response.status_code,
                    elapsed_ms=(perf_counter() - started) * 1000.0,
                    request_headers=request.headers.raw,
                    response_headers=response.headers.raw,
                    request_body=request_body,
                    response_body=response_body,
                    user_id=self.user_id,
                    trace_id=trace.trace_id if trace else None,
                    span_id=trace.span_id if trace else None,
                )
            )
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)


class _RecordingStream(httpx.SyncByteStream):
    def __init__(
        self,
        stream: httpx.SyncByteStream,
        on_close: Any,
        body: Body | None,
    ) -> None:
        self._stream = stream
        self._on_close = on_close
        self._body = body
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            if self._body is not None:
                self._body.add(chunk)
            yield chunk

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            if not self._closed:
                self._closed = True
                self._on_close()


class _AsyncRecordingStream(httpx.AsyncByteStream):
    def __init__(
        self,
        stream: httpx.AsyncByteStream,
        on_close: Any,
        body: Body | None,
    ) -> None:
        self._stream = stream
        self._on_close = on_close
        self._body = body
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            if self._body is not None:
                self._body.add(chunk)
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if not self._closed:
                self._closed = True
                self._on_close()


class LogHarborTransport(httpx.BaseTransport):
    """Wraps ``transport`` (default ``httpx.HTTPTransport()``) and records each exchange."""

    def __init__(
        self,
        collector: Collector,
        transport: httpx.BaseTransport | None = None,
        *,
        capture_bodies: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        user_id: str | None = None,
    ) -> None:
        self._transport = transport or httpx.HTTPTransport()
        self._recorder = _Recorder(collector, capture_bodies, max_body_bytes, user_id)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        trace = self._recorder.trace(request)
        request_body = self._recorder.request_body(request)
        started = perf_counter()
        response = self._transport.handle_request(request)
        response_body = Body(self._recorder.max_body_bytes) if request_body is not None else None
        stream = response.stream
        assert isinstance(stream, httpx.SyncByteStream)

        def on_close() -> None:
            self._recorder.record(request, response, started, request_body, response_body, trace)

        response.stream = _RecordingStream(stream, on_close, response_body)
        return response

    def close(self) -> None:
        self._transport.close()


class AsyncLogHarborTransport(httpx.AsyncBaseTransport):
    """Wraps ``transport`` (default ``httpx.AsyncHTTPTransport()``) and records each exchange."""

    def __init__(
        self,
        collector: Collector,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        capture_bodies: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        user_id: str | None = None,
    ) -> None:
        self._transport = transport or httpx.AsyncHTTPTransport()
        self._recorder = _Recorder(collector, capture_bodies, max_body_bytes, user_id)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        trace = self._recorder.trace(request)
        request_body = self._recorder.request_body(request)
        started = perf_counter()
        response = await self._transport.handle_async_request(request)
        response_body = Body(self._recorder.max_body_bytes) if request_body is not None else None
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)

        def on_close() -> None:
            self._recorder.record(request, response, started, request_body, response_body, trace)

        response.stream = _AsyncRecordingStream(stream, on_close, response_body)
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()


def event_hooks(collector: Collector, *, user_id: str | None = None) -> dict[str, list[Any]]:
    """httpx ``event_hooks`` for a sync client that record each exchange (no bodies).

    ``httpx.Client(event_hooks=event_hooks(collector))``. The latency is ``response.elapsed``
    as far as the headers (hooks run before the body is read); prefer the transport when you
    can choose. The request hook adds the ``traceparent`` header, as the transport does.
    """
    recorder = _Recorder(collector, False, 0, user_id)

    def on_response(response: httpx.Response) -> None:
        request = response.request
        started = request.extensions.get("logharbor.started")
        if not isinstance(started, float):
            started = perf_counter()
        trace = request.extensions.get("logharbor.trace")
        if not isinstance(trace, tracing.TraceContext):
            trace = None
        recorder.record(request, response, started, None, None, trace)

    def on_request(request: httpx.Request) -> None:
        request.extensions["logharbor.trace"] = recorder.trace(request)
        request.extensions["logharbor.started"] = perf_counter()

    return {"request": [on_request], "response": [on_response]}


def async_event_hooks(collector: Collector, *, user_id: str | None = None) -> dict[str, list[Any]]:
    """The same hooks for ``httpx.AsyncClient(event_hooks=...)``."""
    sync = event_hooks(collector, user_id=user_id)

    async def on_request(request: httpx.Request) -> None:
        sync["request"][0](request)

    async def on_response(response: httpx.Response) -> None:
        sync["response"][0](response)

    return {"request": [on_request], "response": [on_response]}
