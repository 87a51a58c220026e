"""Django: add ``"logharbor.collector.django.LogHarborMiddleware"`` first in ``MIDDLEWARE``.

Configured by ``settings.LOGHARBOR``: either a ``Collector`` or a dict with the collector's
arguments (``url``, ``api_key``, ``traffic_source_id``, ...) plus the capture options
``capture_bodies``, ``max_body_bytes``, ``user_id`` (a callable taking the request) and
``exclude_paths``. Works under WSGI and ASGI; the route template comes from
``request.resolver_match.route``.

Each request continues the trace of its ``traceparent`` header or starts one; the trace is
current (``logharbor.collector.tracing.current_trace()``) while Django handles the request, so
that outbound calls continue it, and so is the request (``current_request``), so that the LLM
calls a view makes are sent with the request's record id and route template. An exception a
view raises reaches ``process_exception``, which only notes it (Django goes on handling it
exactly as before); when the response is a 5xx the exception is sent with the record (type,
message, traceback; see ``logharbor.collector.exceptions``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import perf_counter
from typing import Any

from logharbor.collector import current_request, tracing
from logharbor.collector.collector import Collector
from logharbor.collector.exceptions import capture_exception
from logharbor.collector.records import Body, Exchange

log = logging.getLogger("logharbor.collector")

DEFAULT_MAX_BODY_BYTES = 16 * 1024
_CAPTURE_OPTIONS = ("capture_bodies", "max_body_bytes", "user_id", "exclude_paths")
# Where process_exception leaves a view's exception for __call__ (an attribute of the request:
# it lives exactly as long as the request does).
_EXCEPTION_ATTR = "_logharbor_exception"


def _from_settings() -> tuple[Collector, dict[str, Any]]:
    from django.conf import settings  # type: ignore[import-untyped]

    config = getattr(settings, "LOGHARBOR", None)
    if isinstance(config, Collector):
        return config, {}
    if not isinstance(config, dict):
        raise RuntimeError("settings.LOGHARBOR must be a Collector or a dict of its arguments")
    config = dict(config)
    options = {key: config.pop(key) for key in _CAPTURE_OPTIONS if key in config}
    collector = config.pop("collector", None)
    if not isinstance(collector, Collector):
        collector = Collector(**config)
    return collector, options


def route_template(request: Any) -> str | None:
    """The matched route as a path of the same URL as ``request.path``: Django's ``route`` has
    no leading slash and leaves out the script prefix (an app served under /shop)."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if not isinstance(route, str):
        return None
    # re_path() routes are regular expressions: their anchors are no part of the URL.
    route = route.lstrip("^/")
    if route.endswith("\\Z"):
        route = route[:-2]
    elif route.endswith("$") and not route.endswith("\\$"):
        route = route[:-1]
    path, path_info = request.path, request.path_info
    script = path[: len(path) - len(path_info)] if path_info and path.endswith(path_info) else ""
    return f"{script.rstrip('/')}/{route}"


class LogHarborMiddleware:
    """Records every request Django serves into the configured collector."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        collector, options = _from_settings()
        self.collector = collector
        self.capture_bodies: bool = options.get("capture_bodies", False)
        self.max_body_bytes: int = options.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
        self.user_id: Callable[[Any], Any] | None = options.get("user_id")
        self.exclude_paths = tuple(options.get("exclude_paths", ()))

    def __call__(self, request: Any) -> Any:
        if self.exclude_paths and request.path.startswith(self.exclude_paths):
            return self.get_response(request)
        request_body = self._request_body(request) if self.capture_bodies else None
        trace = token = current = request_token = None
        try:
            trace = tracing.server_trace(request.META.get("HTTP_TRACEPARENT"))
            token = tracing.enter(trace)
            # LLM calls the view makes name this request's record and route (read when asked:
            # Django resolves the URL after this middleware has started).
            current = current_request.CurrentRequest(lambda: route_template(request))
            request_token = current_request.enter(current)
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)
        started = perf_counter()
        try:
            response = self.get_response(request)
        finally:
            if request_token is not None:
                current_request.leave(request_token)
            if token is not None:
                tracing.leave(token)
        try:
            self._record(request, response, started, request_body, trace, current)
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)
        return response

    def process_exception(self, request: Any, exception: Exception) -> None:
        """Note the view's exception for the record; None, so Django handles it as before."""
        try:
            if not (self.exclude_paths and request.path.startswith(self.exclude_paths)):
                setattr(request, _EXCEPTION_ATTR, exception)
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)

    def _request_body(self, request: Any) -> Body | None:
        body = Body(self.max_body_bytes)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length == 0:
            return body
        if length > self.max_body_bytes:
            # Reading it would pull a large upload into memory; note the size only.
            body.size = length
            return body
        try:
            # Django caches the body, so the view (and request.POST) still see all of it.
            body.add(request.body)
        except Exception:
            return None
        return body

    def _record(
        self,
        request: Any,
        response: Any,
        started: float,
        body: Body | None,
        trace: tracing.TraceContext | None,
        current: current_request.CurrentRequest | None,
    ) -> None:
        elapsed = (perf_counter() - started) * 1000.0
        # Taken off the request: through its traceback the exception holds the view's frames,
        # and with them the request itself.
        error = request.__dict__.pop(_EXCEPTION_ATTR, None)
        exception = None
        if isinstance(error, Exception) and response.status_code >= 500:
            # Only a 5xx: a view's Http404 or PermissionDenied reaches process_exception too.
            exception = capture_exception(error)
        response_body = None
        if self.capture_bodies:
            response_body = Body(self.max_body_bytes)
            if not getattr(response, "streaming", False):
                response_body.add(response.content)
        try:
            host = request.get_host()
        except Exception:  # DisallowedHost: still worth recording
            host = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "unknown")
        self.collector.record(
            Exchange(
                method=request.method or "GET",
                scheme=request.scheme or "http",
                host=host,
                path=request.path,
                query=request.META.get("QUERY_STRING", ""),
                status=response.status_code,
                elapsed_ms=elapsed,
                request_headers=dict(request.headers),
                response_headers=list(response.items()),
                request_body=body,
                response_body=response_body,
                route=route_template(request),
                user_id=self._user(request),
                trace_id=trace.trace_id if trace else None,
                span_id=trace.span_id if trace else None,
                exception=exception,
                record_id=current.known_record_id if current is not None else None,
            )
        )

    def _user(self, request: Any) -> str | None:
        if self.user_id is None:
            return None
        try:
            value = self.user_id(request)
        except Exception:
            log.debug("LogHarbor user_id callback failed (ignored)", exc_info=True)
            return None
        return None if value is None else str(value)
