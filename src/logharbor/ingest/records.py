"""The typed record model every front-end decodes its wire format into.

``HttpExchange`` and ``LogLine`` are what a front-end saw, before any validation or masking
(``ingest.normalize`` does both, the same way for every wire format). ``NormalizedExchange`` is
what the pipeline stores of an exchange; a log line keeps its shape (``normalize_log`` returns
another ``LogLine``, masked and checked).

The classes a record passes through on the ingest path (these, and the store's and events'
per-record classes) are plain slotted dataclasses, not frozen ones: a frozen dataclass sets each
field through ``object.__setattr__``, which measured 3.8 against 1.0 us for 17 fields, and a
batch record went through about 70 such fields (2026-12-04, the AMD EPYC VM of
bench/RESULTS.md). Nothing mutates them after construction; treat them as values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from logharbor.traffic.normalize import StoredBody


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a stack trace, innermost last (as Python prints them)."""

    file: str
    line: int | None
    function: str


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """An exception raised while serving a request (a span's ``exception`` event, say)."""

    type: str
    message: str
    stacktrace: str | None = None
    frames: tuple[Frame, ...] = ()


@dataclass(slots=True)
class HttpExchange:
    """One HTTP exchange as a front-end decoded it: not yet validated, normalized or masked.

    ``domain`` is an origin or a bare host (``protocol`` then names the scheme). Headers, query
    parameters and bodies are what the wire carried: JSON values, or JSON text.
    """

    domain: str
    pathname: str
    method: str
    status: int
    elapsed_ms: float
    request_headers: Any = None
    request_body: Any = None
    query: Any = None
    response_headers: Any = None
    response_body: Any = None
    protocol: str | None = None
    route: str | None = None
    # When the exchange started; None means "as it arrives" (compose has no time field).
    started_at: datetime | None = None
    user_id: str | None = None
    # The client's own id: a retry with the same id is stored once.
    client_id: str | None = None
    trace_id: str | None = None  # 32 lower-case hex digits
    span_id: str | None = None  # 16 lower-case hex digits
    exception: ExceptionInfo | None = None


@dataclass(slots=True)
class LogLine:
    """One application log line (an OTLP log record, say), before normalization.

    ``route`` is the core pathname it is filed under; ``level`` is already one of INFO, WARNING
    or FATAL (front-ends map their own severities).
    """

    time: datetime
    level: str
    message: str
    route: str
    attributes: Any  # a JSON object of the line's attributes
    trace_id: str | None = None
    span_id: str | None = None
    method: str | None = None
    status: int | None = None
    elapsed_ms: float | None = None
    user_id: str | None = None
    exception: ExceptionInfo | None = None


@dataclass(slots=True)
class Payload:
    """A request or response ready for its table (masked, capped)."""

    headers: Any
    body: StoredBody
    query_params: Any = None


@dataclass(slots=True)
class NormalizedExchange:
    """One validated, normalized, masked HTTP exchange; no database work done yet."""

    origin: str  # scheme://host[:port]
    protocol: str  # HTTP | HTTPS
    pathname: str
    status: int
    method: str  # upper case
    level: str  # INFO | WARNING | FATAL
    elapsed_time: float  # milliseconds
    traffic_user_id: str | None
    request: Payload
    response: Payload
    client_id: str | None = None
    route: str | None = None
    started_at: datetime | None = None
    trace_id: str | None = None
    span_id: str | None = None
    exception: ExceptionInfo | None = None


@dataclass(slots=True)
class Generation:
    """One LLM call (an OTLP span with GenAI or OpenInference attributes, say), before
    normalization. Messages are JSON values in the GenAI semantic conventions' shape
    (``[{"role": ..., "parts": [...]}]``); ``parameters`` holds the request's sampling options."""

    provider: str
    operation: str
    request_model: str
    started_at: datetime
    duration_ms: float
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] | None = None
    parameters: dict[str, Any] | None = None
    input_messages: Any = None
    output_messages: Any = None
    system_instructions: Any = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    time_to_first_token_ms: float | None = None
    streamed: bool = False
    error_type: str | None = None
    error_message: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    # The route template of the request it was made under, and that request's record id, when
    # the sender knew them (LogHarbor's collector does).
    route: str | None = None
    traffic_record_id: str | None = None
    prompt_id: str | None = None
    prompt_version: int | None = None
    client_id: str | None = None
    # Set by the normalize step: the start of the output's text, for lists.
    output_preview: str | None = None


@dataclass(slots=True)
class Span:
    """A span of a trace that is neither an HTTP exchange nor an LLM call (a database query,
    a function): kept so that a request's page can draw its whole trace."""

    trace_id: str
    span_id: str
    name: str
    kind: str  # INTERNAL | SERVER | CLIENT | PRODUCER | CONSUMER
    started_at: datetime
    duration_ms: float
    status: str = "UNSET"  # UNSET | OK | ERROR
    status_message: str | None = None
    parent_span_id: str | None = None
    service: str | None = None
    attributes: Any = None
    client_id: str | None = None
