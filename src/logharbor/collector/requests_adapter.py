"""requests: a transport adapter that records the calls a ``Session`` makes.

    session = requests.Session()
    instrument_session(session, collector)

Only imported when used, so the collector does not need ``requests`` installed.

Each call is traced (W3C Trace Context): a ``traceparent`` header is added carrying the trace
current where the call is made (``logharbor.collector.tracing.current_trace()``: the request
the app is serving, when its middleware is the collector's) with a new span id for the call,
or a new trace outside any request; the record carries the same ids. A ``traceparent`` the
caller set (on the call or the session) is never replaced: the call is recorded as the span
it names. A redirect's later hops carry the first hop's header (requests copies the headers),
so they are recorded under the same span.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter

from logharbor.collector import tracing
from logharbor.collector.collector import Collector
from logharbor.collector.records import Body, Exchange

log = logging.getLogger("logharbor.collector")

DEFAULT_MAX_BODY_BYTES = 16 * 1024


class LogHarborAdapter(HTTPAdapter):
    """``HTTPAdapter`` that records each exchange; mount it for ``http://`` and ``https://``.

    With ``capture_bodies`` and a non-streaming call, the response body is read here (requests
    would read it right after anyway), so the latency covers the body.
    """

    def __init__(
        self,
        collector: Collector,
        *,
        capture_bodies: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        user_id: str | None = None,
        **adapter_options: Any,
    ) -> None:
        super().__init__(**adapter_options)
        self.collector = collector
        self.capture_bodies = capture_bodies
        self.max_body_bytes = max_body_bytes
        self.user_id = user_id

    def send(self, request: Any, stream: bool = False, **kwargs: Any) -> Any:  # type: ignore[override]
        trace = None
        try:
            trace, add = tracing.outbound_trace(request.headers.get(tracing.TRACEPARENT))
            if add:
                request.headers[tracing.TRACEPARENT] = trace.traceparent
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)
        started = perf_counter()
        response = super().send(request, stream=stream, **kwargs)
        try:
            self._record(request, response, stream, started, trace)
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)
        return response

    def _record(
        self,
        request: Any,
        response: Any,
        stream: bool,
        started: float,
        trace: tracing.TraceContext | None,
    ) -> None:
        request_body = response_body = None
        if self.capture_bodies:
            request_body = Body(self.max_body_bytes)
            raw = request.body
            if isinstance(raw, str):
                raw = raw.encode()
            if isinstance(raw, bytes):
                request_body.add(raw)
            response_body = Body(self.max_body_bytes)
            if not stream:
                response_body.add(response.content)
        url = urlsplit(request.url)
        self.collector.record(
            Exchange(
                method=request.method or "GET",
                scheme=url.scheme,
                host=url.netloc.rpartition("@")[2],
                path=url.path or "/",
                query=url.query,
                status=response.status_code,
                elapsed_ms=(perf_counter() - started) * 1000.0,
                request_headers=dict(request.headers),
                response_headers=dict(response.headers),
                request_body=request_body,
                response_body=response_body,
                user_id=self.user_id,
                trace_id=trace.trace_id if trace else None,
                span_id=trace.span_id if trace else None,
            )
        )


def instrument_session(session: Any, collector: Collector, **options: Any) -> LogHarborAdapter:
    """Mount one recording adapter on ``session`` for both schemes; returns it."""
    adapter = LogHarborAdapter(collector, **options)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return adapter
