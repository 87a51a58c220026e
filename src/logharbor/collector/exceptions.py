"""What the collector sends about an exception the app raised on a request that ended in a 5xx.

The record's ``exception`` holds the type (``"ValueError"``, ``"myapp.errors.PaymentFailed"``),
the message, the formatted traceback and the frames (file, line, function; innermost last).
No local variable values are captured (``capture_locals`` stays off), so the frames hold
nothing that would need masking. The message and the traceback text do go through the
collector's redaction (``mask_text``), as unparsed bodies do: apps put request data in
messages (``f"bad token={token}"``), and the traceback text repeats the message.

The work is split like the rest of the collector. On the request path ``capture_exception``
keeps names and line numbers only, so that a queued record holds no frames (and through them
no local of the failed request); reading source lines, formatting and masking happen in the
sender thread (``exception_info``).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import TypedDict

from logharbor.collector.redaction import mask_text

# Innermost frames are kept: they are where the error happened; the outer ones are mostly the
# server and framework, the same on every record.
MAX_FRAMES = 50
MAX_MESSAGE_CHARS = 2_000
# In UTF-8 bytes; the tail is kept, since a traceback ends with the raise and the message.
MAX_STACKTRACE_BYTES = 16 * 1024
MESSAGE_CUT = "... [truncated]"
STACKTRACE_CUT = "[truncated] ...\n"


class FrameInfo(TypedDict):
    file: str
    line: int
    function: str


class ExceptionInfo(TypedDict):
    """The wire form of the record's ``exception``."""

    type: str
    message: str
    stacktrace: str
    frames: list[FrameInfo]


@dataclass(frozen=True, slots=True)
class CapturedException:
    """An exception as summarised on the request path (no frames, no locals, no file reads)."""

    type: str
    message: str
    summary: traceback.TracebackException


def type_name(cls: type[BaseException]) -> str:
    """``"ValueError"`` for a builtin, ``"module.QualName"`` otherwise."""
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", cls.__name__)
    if not module or module == "builtins":
        return qualname
    return f"{module}.{qualname}"


def _message(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # an app's __str__ that fails must not lose the record
        return f"<unprintable {type(error).__name__}>"


def capture_exception(error: BaseException) -> CapturedException:
    """Summarise ``error`` while its traceback is at hand; cheap and free of I/O."""
    summary = traceback.TracebackException(
        type(error),
        error,
        error.__traceback__,
        # A negative limit keeps the innermost frames (of each chained exception too).
        limit=-MAX_FRAMES,
        # Source lines are read when formatting, in the sender thread.
        lookup_lines=False,
        compact=True,
    )
    return CapturedException(type_name(type(error)), _message(error), summary)


def _cut_head(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[: MAX_MESSAGE_CHARS - len(MESSAGE_CUT)] + MESSAGE_CUT


def _keep_tail(text: str) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= MAX_STACKTRACE_BYTES:
        return text
    tail = data[len(data) - (MAX_STACKTRACE_BYTES - len(STACKTRACE_CUT)) :]
    # "ignore": a character cut in half at the head is dropped, not turned into garbage.
    return STACKTRACE_CUT + tail.decode("utf-8", "ignore")


def exception_info(captured: CapturedException, keys: frozenset[str]) -> ExceptionInfo:
    """The wire form of a captured exception: masked, then capped.

    Masking comes first, on the whole text, so that a cut can never separate a secret from the
    key that marks it.
    """
    frames: list[FrameInfo] = [
        {"file": frame.filename, "line": frame.lineno or 0, "function": frame.name}
        for frame in captured.summary.stack[-MAX_FRAMES:]
    ]
    try:
        stacktrace = "".join(captured.summary.format())
    except Exception:  # a source file that cannot be read must not lose the record
        stacktrace = f"{captured.type}: {captured.message}\n"
    return {
        "type": captured.type,
        "message": _cut_head(mask_text(captured.message, keys)),
        "stacktrace": _keep_tail(mask_text(stacktrace, keys)),
        "frames": frames,
    }


def mask_exception(value: object, keys: frozenset[str]) -> object:
    """An ``exception`` given in a compose-shaped record, its texts masked and capped."""
    if not isinstance(value, dict):
        return value
    out = dict(value)
    if isinstance(out.get("message"), str):
        out["message"] = _cut_head(mask_text(out["message"], keys))
    if isinstance(out.get("stacktrace"), str):
        out["stacktrace"] = _keep_tail(mask_text(out["stacktrace"], keys))
    return out
