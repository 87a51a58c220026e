"""Client-side collector: capture an app's HTTP traffic and ship it to LogHarbor.

Importable with only the standard library and httpx; never imports the server. httpx itself is
imported only when something that needs it is used (the HTTP transport, the httpx wrappers), and
``requests`` only by ``logharbor.collector.requests_adapter``.

    from logharbor.collector import Collector, LogHarborASGIMiddleware
    collector = Collector("https://logs.example.com", api_key="lhk_...", traffic_source_id="...")
    app.add_middleware(LogHarborASGIMiddleware, collector=collector)

Every record carries a W3C trace id and span id. A request the app serves continues the trace
of its ``traceparent`` header (or starts one), and the calls the app makes while serving it
through ``LogHarborTransport``/``AsyncLogHarborTransport`` or the requests adapter send it on,
so one trace id links a request, the calls it made and the requests those caused in other
apps (``logharbor.collector.tracing``). A request that ends in a 5xx because the app raised
carries the exception: type, message, traceback and frames, masked and capped, with no local
variable values (``logharbor.collector.exceptions``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from logharbor.collector.asgi import LogHarborASGIMiddleware
from logharbor.collector.collector import Collector, CollectorStats
from logharbor.collector.prompts import (
    CompiledPrompt,
    Prompt,
    PromptError,
    PromptUnavailable,
    PromptVariableMissing,
)
from logharbor.collector.records import Exchange, TrafficRecord
from logharbor.collector.tracing import TraceContext, current_trace, use_trace
from logharbor.collector.transport import HttpTransport, SendResult, Transport
from logharbor.collector.wsgi import LogHarborWSGIMiddleware

if TYPE_CHECKING:
    from logharbor.collector.httpx_transport import AsyncLogHarborTransport, LogHarborTransport

__all__ = [
    "AsyncLogHarborTransport",
    "Collector",
    "CollectorStats",
    "CompiledPrompt",
    "Exchange",
    "HttpTransport",
    "LogHarborASGIMiddleware",
    "LogHarborTransport",
    "LogHarborWSGIMiddleware",
    "Prompt",
    "PromptError",
    "PromptUnavailable",
    "PromptVariableMissing",
    "SendResult",
    "TraceContext",
    "TrafficRecord",
    "Transport",
    "current_trace",
    "use_trace",
]


def __getattr__(name: str) -> Any:
    # The httpx wrappers subclass httpx classes, so they load httpx: only on first use.
    if name in ("LogHarborTransport", "AsyncLogHarborTransport"):
        from logharbor.collector import httpx_transport

        return getattr(httpx_transport, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
