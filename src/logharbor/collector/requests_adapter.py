"""requests: a transport adapter that records the calls a ``Session`` makes.

    session = requests.Session()
    instrument_session(session, collector)

Only imported when used, so the collector does not need ``requests`` installed.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter

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
        started = perf_counter()
        response = super().send(request, stream=stream, **kwargs)
        try:
            self._record(request, response, stream, started)
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)
        return response

    def _record(self, request: Any, response: Any, stream: bool, started: float) -> None:
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
            )
        )


def instrument_session(session: Any, collector: Collector, **options: Any) -> LogHarborAdapter:
    """Mount one recording adapter on ``session`` for both schemes; returns it."""
    adapter = LogHarborAdapter(collector, **options)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return adapter
