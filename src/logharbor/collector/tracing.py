"""W3C Trace Context: which distributed trace a served request or an outbound call belongs to.

A request the app serves continues the trace of its ``traceparent`` header (the same trace id,
a span id of its own) or, without a valid one, starts a new trace. While the app serves it the
trace is current (``current_trace()``, a ``ContextVar``: each asyncio task and each thread of a
threaded WSGI server sees its own request's), so that outbound calls made through the httpx
and requests wrappers send a ``traceparent`` continuing it. Outside any request an outbound call
starts a trace of its own. Every record carries ``traceId`` and ``spanId``, so LogHarbor can
show a request beside the calls it made and the requests those calls caused elsewhere.

When the app uses OpenTelemetry and no request of the collector's is current, the current
OpenTelemetry span is the parent instead, so that the collector's records and the app's own
traces share trace ids. OpenTelemetry is never imported here: the collector needs only the
standard library.

Only the ``traceparent`` header is read and written; ``tracestate`` is passed through untouched
by the app's own code and otherwise not propagated.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import sys
from collections.abc import Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass

TRACEPARENT = "traceparent"
SAMPLED = 0x01

# version-traceid-parentid-flags, lower-case hex only (the spec's own grammar); a later version
# may append fields after another "-", version 00 may not.
_TRACEPARENT = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[\x21-\x7e]*)?"
)
_INVALID_VERSION = "ff"
_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16


@dataclass(frozen=True, slots=True)
class TraceContext:
    """One span of a trace: 32 and 16 lower-case hex digits, and the trace flags."""

    trace_id: str
    span_id: str
    flags: int = SAMPLED

    @property
    def traceparent(self) -> str:
        """The ``traceparent`` header naming this span as the parent of the next hop."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags:02x}"

    def child(self) -> TraceContext:
        """A new span of the same trace (the caller's sampling decision travels with it)."""
        return TraceContext(self.trace_id, new_span_id(), self.flags)


def new_trace_id() -> str:
    while True:
        value = os.urandom(16).hex()
        if value != _ZERO_TRACE_ID:  # all zeros is the spec's "invalid"
            return value


def new_span_id() -> str:
    # Unique, not secret (OpenTelemetry's SDK draws them the same way): the process's PRNG,
    # reseeded in a forked child by the random module, costs no system call per span.
    while True:
        value = f"{random.getrandbits(64):016x}"
        if value != _ZERO_SPAN_ID:
            return value


def new_trace() -> TraceContext:
    """The first span of a new trace. Sampled: the collector records every request it sees."""
    return TraceContext(new_trace_id(), new_span_id(), SAMPLED)


def parse_traceparent(value: str | bytes | None) -> TraceContext | None:
    """The span a ``traceparent`` header names, or None when the header is absent or malformed.

    Malformed means anything the W3C grammar refuses: upper-case or non-hex digits, wrong
    lengths, version ``ff``, extra fields after a version 00 header, an all-zero id (and so
    also several headers joined by a comma).
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    match = _TRACEPARENT.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == _INVALID_VERSION or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID:
        return None
    bits = int(flags, 16)
    if version != "00":
        # A later version's other flag bits may mean something else: keep only "sampled".
        bits &= SAMPLED
    return TraceContext(trace_id, span_id, bits)


_current: ContextVar[TraceContext | None] = ContextVar("logharbor_trace", default=None)


def current_trace() -> TraceContext | None:
    """The span the running code belongs to, or None outside any request.

    That is the request the collector's middleware is serving; else the current
    OpenTelemetry span, when the app uses OpenTelemetry and one is active.
    """
    trace = _current.get()
    if trace is not None:
        return trace
    return _opentelemetry_span()


def _opentelemetry_span() -> TraceContext | None:
    # Looked up, never imported: an app that has a current span has imported the API already,
    # and importing it here would cost every app without OpenTelemetry an import per process
    # (and an ImportError per call where it is not installed).
    otel = sys.modules.get("opentelemetry.trace")
    if otel is None:
        return None
    try:
        context = otel.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return TraceContext(
            f"{context.trace_id:032x}", f"{context.span_id:016x}", int(context.trace_flags) & 0xFF
        )
    except Exception:
        return None


def server_trace(traceparent: str | bytes | None) -> TraceContext:
    """The span of a request the app serves, given its ``traceparent`` header.

    The incoming header's trace is continued; without a valid one the trace already current
    (an outer middleware, an OpenTelemetry server span) is; else a new trace starts.
    """
    parent = parse_traceparent(traceparent) or current_trace()
    return new_trace() if parent is None else parent.child()


def outbound_trace(existing: str | bytes | None) -> tuple[TraceContext, bool]:
    """The span of an outbound call, and whether its ``traceparent`` header is to be added.

    A valid ``traceparent`` the caller set already (an OpenTelemetry instrumentation, say) is
    theirs: it is kept and the call is recorded as the span it names. A malformed one is left
    as it is too (the collector never changes what the app sends), and the call is recorded
    under the current trace. Without one, the call is a new span of the current trace, or of a
    new trace outside any request.
    """
    if existing is not None:
        given = parse_traceparent(existing)
        if given is not None:
            return given, False
    parent = current_trace()
    trace = new_trace() if parent is None else parent.child()
    return trace, existing is None


def enter(trace: TraceContext) -> Token[TraceContext | None]:
    """Make ``trace`` current in this context; hand the token to ``leave`` when done."""
    return _current.set(trace)


def leave(token: Token[TraceContext | None]) -> None:
    # Reset from another context (a response iterable closed by a different thread) or twice:
    # there is nothing of this request's left to undo here.
    with contextlib.suppress(ValueError, RuntimeError):
        _current.reset(token)


@contextlib.contextmanager
def use_trace(trace: TraceContext) -> Iterator[TraceContext]:
    """Make ``trace`` current for the block: for work the middleware does not see (a job
    continuing the trace of the request that queued it, say)."""
    token = enter(trace)
    try:
        yield trace
    finally:
        leave(token)
