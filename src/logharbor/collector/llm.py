"""LLM calls as OpenTelemetry GenAI spans: what is taken on the app's path, and what is sent.

``Collector.instrument_openai()`` and ``Collector.instrument_anthropic()`` replace methods of
the SDKs' resource classes (as OpenTelemetry's instrumentors do), so every client, made before
or after, is covered; ``uninstrument_*()`` puts them back. The replacements:

- on the app's path take only what later work needs: the call's keyword arguments (the lists
  of messages copied, since apps append the answer to the list they passed), the current trace
  and request, the time. The SDK's answer is kept as it is; a stream is handed back wrapped,
  each chunk passing through as it came, kept with a list append (and its time, until one
  carrying output has been read: the time to first token), so nothing is delayed. The chunks
  are read (``StreamNotes``) in batches once the app has them, and when the stream ends; then
  dropped, so that only plain values wait for the sender thread. Ids, reading the answer,
  masking and JSON all wait for it;
- give the finished call to the collector's queue; its sender thread turns it into a span
  (``to_span``): GenAI attributes, content converted to the semantic conventions' message
  structure and masked by the collector's rules, and sends it with the other spans to
  ``/v1/traces``;
- never raise into the app: a failure of their own is swallowed and counted in
  ``Collector.stats().capture_errors``; the SDK's own errors are noted on the span and raised
  on unchanged.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

from logharbor.collector import current_request, tracing
from logharbor.collector.otlp import SPAN_KIND_CLIENT, STATUS_ERROR, attributes
from logharbor.collector.prompts import CompiledPrompt
from logharbor.collector.redaction import mask, mask_text, mentions_any

if TYPE_CHECKING:
    from logharbor.collector.collector import Collector

log = logging.getLogger("logharbor.collector")

# Where a prompt from ``Collector.prompt()`` may sit in a call's arguments.
_PROMPT_KEYS = ("messages", "input", "system", "instructions")
# A stream's chunks are read this many at a time: in one tight loop the reading code stays in
# the CPU's caches, where reading each chunk as it passed, between the SDK's own work on the
# next, ran several times slower. Bounded, so that a long stream holds few chunks at a time.
NOTE_EVERY = 32
_MAX_WALK_DEPTH = 6


@dataclass(slots=True)
class Summary:
    """What the answer says, in the conventions' terms."""

    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    output_messages: list[dict[str, Any]] | None = None


class StreamNotes(Protocol):
    """What one stream's chunks said, noted on the app's path.

    Only plain values are kept (strings, ints; the few containers holding them), never the
    SDK's chunk objects: a stream's chunks are dozens of objects the garbage collector tracks,
    and keeping them until the sender thread read them made its collections run ~14 times as
    often (and the full ones, tens of milliseconds each, now and then), paid on the app's
    thread.
    """

    def note(self, chunks: list[Any], failed: Callable[[], None]) -> int:
        """Note the chunks, in order; the index of the first carrying output (for the time to
        first token), or -1. A chunk that cannot be read is skipped and counted by calling
        ``failed``."""
        ...

    def summary(self) -> Summary:
        """What was noted, in the conventions' terms (in the sender thread)."""
        ...


class Adapter(Protocol):
    """One provider's API: how to read its arguments, answers and stream chunks."""

    provider: str
    operation: str

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]: ...

    def input_messages(self, kwargs: Mapping[str, Any]) -> list[dict[str, Any]]: ...

    def system_instructions(self, kwargs: Mapping[str, Any]) -> list[dict[str, Any]] | None: ...

    def summarize(self, result: Any) -> Summary: ...

    @property
    def stream_notes(self) -> Callable[[], StreamNotes]:
        """Makes a stream's notes: the notes class itself, so that making them is one call."""
        ...


@dataclass(slots=True, eq=False)
class LlmCall:
    """One call, as taken on the app's path; turned into a span in the sender thread."""

    adapter: Adapter
    kwargs: dict[str, Any]
    # The span the call was made under; its own ids are drawn in the sender thread.
    parent: tracing.TraceContext | None
    request: current_request.CurrentRequest | None
    record_id: str | None
    start_ns: int
    streamed: bool
    end_ns: int = 0
    result: Any = None
    notes: StreamNotes | None = None
    # A stream's chunks not read yet, and when each arrived (time.time_ns) until one carrying
    # output has been read.
    chunks: list[Any] | None = None
    chunk_ns: list[int] | None = None
    # When the first chunk carrying output arrived, 0 until one has.
    first_output_ns: int = 0
    error_type: str | None = None
    error_message: str | None = None
    done: bool = False


def begin(collector: Collector, adapter: Adapter, kwargs: Mapping[str, Any]) -> LlmCall | None:
    """A call about to be made, or None when it is not to be captured (or capture failed)."""
    try:
        if not collector.enabled:
            return None
        request = current_request.current_request()
        copied = dict(kwargs)
        for key in _PROMPT_KEYS:
            value = copied.get(key)
            if type(value) is list:
                copied[key] = list(value)
        return LlmCall(
            adapter,
            copied,
            tracing.current_trace(),
            request,
            # Asked for now: the middleware sends the record under this id when the request ends.
            request.record_id if request is not None else None,
            time.time_ns(),
            bool(kwargs.get("stream")),
        )
    except Exception:
        collector.capture_failed()
        return None


def finish(collector: Collector, call: LlmCall, error: BaseException | None = None) -> None:
    """The call is over (answered, failed, or its stream ended or was closed): queue it once."""
    try:
        if call.done:
            return
        call.done = True
        call.end_ns = time.time_ns()
        if call.chunks:
            _note_chunks(collector, call)
        # Chunks still passing after a close are not read: the sender may be reading the notes.
        call.chunks = call.chunk_ns = None
        if error is not None:
            call.error_type = type(error).__name__
            call.error_message = str(error)
        collector.record(call)
    except Exception:
        collector.capture_failed()


def _settle(
    collector: Collector, call: LlmCall, result: Any, stream_types: tuple[type, ...]
) -> Any:
    """What to hand the app: the SDK's answer, a stream wrapped so that it is observed."""
    try:
        if stream_types and isinstance(result, stream_types):
            call.streamed = True
            call.notes = call.adapter.stream_notes()
            call.chunks = []
            call.chunk_ns = []
            if hasattr(result, "__anext__"):
                return AsyncStreamProxy(result, collector, call)
            return StreamProxy(result, collector, call)
        call.result = result
    except Exception:
        collector.capture_failed()
        return result
    finish(collector, call)
    return result


class Patches:
    """SDK methods replaced by an instrumentation, the collector they report to, and the way
    back. Re-instrumenting with another collector only changes where calls are reported."""

    def __init__(self) -> None:
        self.collector: Collector | None = None
        self._originals: list[tuple[type, str, Any]] = []

    @property
    def installed(self) -> bool:
        return bool(self._originals)

    def replace(self, cls: type, name: str, make: Callable[[Any], Any]) -> None:
        original = cls.__dict__.get(name)
        if original is None:
            return  # an SDK version without it
        replacement = make(original)
        replacement.__logharbor_original__ = original
        setattr(cls, name, replacement)
        self._originals.append((cls, name, original))

    def restore(self) -> None:
        for cls, name, original in reversed(self._originals):
            setattr(cls, name, original)
        self._originals.clear()
        self.collector = None


def sync_method(
    patches: Patches, adapter: Adapter, original: Any, stream_types: tuple[type, ...]
) -> Any:
    """``create`` of a sync resource, captured."""

    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        collector = patches.collector
        call = None if collector is None else begin(collector, adapter, kwargs)
        if call is None or collector is None:
            return original(*args, **kwargs)
        try:
            result = original(*args, **kwargs)
        except BaseException as error:
            finish(collector, call, error)
            raise
        return _settle(collector, call, result, stream_types)

    return create


def async_method(
    patches: Patches, adapter: Adapter, original: Any, stream_types: tuple[type, ...]
) -> Any:
    """``create`` of an async resource, captured."""

    @functools.wraps(original)
    async def create(*args: Any, **kwargs: Any) -> Any:
        collector = patches.collector
        call = None if collector is None else begin(collector, adapter, kwargs)
        if call is None or collector is None:
            return await original(*args, **kwargs)
        try:
            result = await original(*args, **kwargs)
        except BaseException as error:
            finish(collector, call, error)
            raise
        return _settle(collector, call, result, stream_types)

    return create


def sync_request(
    collector: Collector,
    adapter: Adapter,
    kwargs: Mapping[str, Any],
    request: Callable[[], Any],
    stream_types: tuple[type, ...],
) -> Callable[[], Any]:
    """A stream helper's deferred request (made when its manager is entered), captured."""

    def make() -> Any:
        call = begin(collector, adapter, kwargs)
        if call is None:
            return request()
        try:
            result = request()
        except BaseException as error:
            finish(collector, call, error)
            raise
        return _settle(collector, call, result, stream_types)

    return make


async def async_request(
    collector: Collector,
    adapter: Adapter,
    kwargs: Mapping[str, Any],
    request: Any,
    stream_types: tuple[type, ...],
) -> Any:
    """An async stream helper's deferred request (an awaitable), captured when awaited."""
    call = begin(collector, adapter, kwargs)
    if call is None:
        return await request
    try:
        result = await request
    except BaseException as error:
        finish(collector, call, error)
        raise
    return _settle(collector, call, result, stream_types)


class _Observed:
    """What both stream wrappers share: ending once, passing the rest on.

    Chunks are kept by a generator over the SDK's stream (``_observe``), which the wrapper
    hands out as its iterator: a chunk costs the app one more generator step and an append
    (and one in ``NOTE_EVERY`` a call reading the batch, once it has reached the app). The
    generator holds the call, never the wrapper, so that dropping the wrapper frees it (and
    closes the SDK's stream) at once.
    """

    _lh_stream: Any
    _lh_collector: Collector
    _lh_call: LlmCall

    def _lh_end(self) -> None:
        call = self._lh_call
        if not call.done:
            finish(self._lh_collector, call)

    def __getattr__(self, name: str) -> Any:
        # Anything the app reads off the SDK's stream (``response``, helpers) is the SDK's own.
        if name.startswith("_lh_"):
            raise AttributeError(name)  # not set yet: never recurse looking for it
        return getattr(self._lh_stream, name)

    def __del__(self) -> None:
        # A stream dropped unread and unclosed still ends its call (``finish`` never raises).
        # Runs for every stream, so no suppress() context; read from ``__dict__`` because a
        # wrapper whose ``__init__`` failed has no call.
        call = self.__dict__.get("_lh_call")
        if call is not None and not call.done:
            finish(self._lh_collector, call)


def _observe(stream: Any, collector: Collector, call: LlmCall) -> Iterator[Any]:
    """The SDK's chunks as they come, kept until read; the call ends with them.

    Each chunk is kept with the time it arrived until a chunk carrying output has been read
    (its time is the time to first token); after that a chunk costs one append.
    """
    keep = (call.chunks if call.chunks is not None else []).append
    stamp = (call.chunk_ns if call.chunk_ns is not None else []).append
    clock = time.time_ns
    stamping = True
    room = NOTE_EVERY
    try:
        for chunk in stream:
            try:
                keep(chunk)
                if stamping:
                    stamp(clock())
            except Exception:
                collector.capture_failed()
            yield chunk
            # Read while the app has its chunk and the next is on its way, not before handing
            # one out: no chunk waits for it.
            room -= 1
            if not room:
                room = NOTE_EVERY
                _note_chunks(collector, call)
                stamping = not call.first_output_ns
    except GeneratorExit:
        finish(collector, call)  # closed, or dropped, before the end: not an error
        raise
    except BaseException as error:
        finish(collector, call, error)
        raise
    finish(collector, call)


async def _observe_async(stream: Any, collector: Collector, call: LlmCall) -> AsyncIterator[Any]:
    """``_observe`` for an async stream. A twin, not a shared body: sharing one would cost a
    call per chunk, which is what both exist to avoid."""
    keep = (call.chunks if call.chunks is not None else []).append
    stamp = (call.chunk_ns if call.chunk_ns is not None else []).append
    clock = time.time_ns
    stamping = True
    room = NOTE_EVERY
    try:
        async for chunk in stream:
            try:
                keep(chunk)
                if stamping:
                    stamp(clock())
            except Exception:
                collector.capture_failed()
            yield chunk
            room -= 1
            if not room:
                room = NOTE_EVERY
                _note_chunks(collector, call)
                stamping = not call.first_output_ns
    except GeneratorExit:
        finish(collector, call)
        raise
    except BaseException as error:
        finish(collector, call, error)
        raise
    finish(collector, call)


def _note_chunks(collector: Collector, call: LlmCall) -> None:
    """Read the chunks kept so far into the call's notes, and drop them. Never raises: a chunk
    that cannot be read is counted and skipped."""
    chunks, stamps, notes = call.chunks, call.chunk_ns, call.notes
    if chunks is None or stamps is None or notes is None:
        return  # the call has ended: what arrived after is not read
    try:
        first = notes.note(chunks, collector.capture_failed)
    except Exception:
        collector.capture_failed()
        first = -1
    if first >= 0 and not call.first_output_ns and first < len(stamps):
        call.first_output_ns = stamps[first]
    chunks.clear()
    stamps.clear()


class StreamProxy(_Observed):
    """The SDK's sync stream: each chunk passes through as it came."""

    def __init__(self, stream: Any, collector: Collector, call: LlmCall) -> None:
        # Not through super().__init__: one frame less on the app's path, for every stream.
        self._lh_stream = stream
        self._lh_collector = collector
        self._lh_call = call
        self._lh_iter = _observe(stream, collector, call)

    def __iter__(self) -> Iterator[Any]:
        return self._lh_iter

    def __next__(self) -> Any:
        return self._lh_iter.__next__()

    def __enter__(self) -> StreamProxy:
        self._lh_stream.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        self._lh_end()
        return self._lh_stream.__exit__(*exc)

    def close(self) -> Any:
        self._lh_end()
        return self._lh_stream.close()


class AsyncStreamProxy(_Observed):
    """The SDK's async stream: each chunk passes through as it came."""

    def __init__(self, stream: Any, collector: Collector, call: LlmCall) -> None:
        self._lh_stream = stream
        self._lh_collector = collector
        self._lh_call = call
        self._lh_iter = _observe_async(stream, collector, call)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._lh_iter

    def __anext__(self) -> Awaitable[Any]:
        return self._lh_iter.__anext__()

    async def __aenter__(self) -> AsyncStreamProxy:
        await self._lh_stream.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        self._lh_end()
        return await self._lh_stream.__aexit__(*exc)

    async def close(self) -> Any:
        self._lh_end()
        return await self._lh_stream.close()


# --- the sender thread's side --------------------------------------------------------------


def to_span(call: LlmCall, keys: frozenset[str], capture_content: bool) -> dict[str, Any]:
    """The OTLP span (JSON mapping) of a finished call; content masked by ``keys``."""
    adapter = call.adapter
    kwargs = call.kwargs
    values: dict[str, Any] = {
        "gen_ai.operation.name": adapter.operation,
        "gen_ai.provider.name": adapter.provider,
    }
    values.update(adapter.request_attributes(kwargs))
    if call.notes is not None:
        summary = call.notes.summary()
    elif call.result is not None:
        summary = adapter.summarize(call.result)
    else:
        summary = Summary()
    values["gen_ai.response.model"] = summary.response_model
    values["gen_ai.response.id"] = summary.response_id
    if summary.finish_reasons:
        values["gen_ai.response.finish_reasons"] = summary.finish_reasons
    values["gen_ai.usage.input_tokens"] = summary.input_tokens
    values["gen_ai.usage.output_tokens"] = summary.output_tokens
    values["gen_ai.usage.cache_read.input_tokens"] = summary.cached_tokens
    values["logharbor.llm.streamed"] = call.streamed
    if call.streamed and call.first_output_ns:
        ttft = (call.first_output_ns - call.start_ns) / 1e6
        values["logharbor.llm.time_to_first_token_ms"] = round(ttft, 3)
    prompt = find_prompt(kwargs)
    if prompt is not None:
        values["logharbor.prompt.id"], values["logharbor.prompt.version"] = prompt
    if call.request is not None:
        values["http.route"] = call.request.route()
    values["logharbor.record.id"] = call.record_id
    if capture_content:
        values["gen_ai.input.messages"] = _masked_json(
            adapter.input_messages(kwargs), mask_messages, keys
        )
        system = adapter.system_instructions(kwargs)
        if system:
            values["gen_ai.system_instructions"] = _masked_json(system, mask_parts, keys)
        if summary.output_messages is not None:
            values["gen_ai.output.messages"] = _masked_json(
                summary.output_messages, mask_messages, keys
            )
    if call.error_type is not None:
        values["error.type"] = call.error_type
    model = values.get("gen_ai.request.model")
    parent = call.parent
    span: dict[str, Any] = {
        "traceId": parent.trace_id if parent is not None else tracing.new_trace_id(),
        "spanId": tracing.new_span_id(),
        "name": f"{adapter.operation} {model}" if model else adapter.operation,
        "kind": SPAN_KIND_CLIENT,
        "startTimeUnixNano": str(call.start_ns),
        "endTimeUnixNano": str(call.end_ns or call.start_ns),
        "attributes": attributes(values),
    }
    if parent is not None:
        span["parentSpanId"] = parent.span_id
    if call.error_type is not None:
        message = mask_text(call.error_message or "", keys)
        span["status"] = {"code": STATUS_ERROR, "message": message}
        span["events"] = [
            {
                "timeUnixNano": str(call.end_ns),
                "name": "exception",
                "attributes": attributes(
                    {"exception.type": call.error_type, "exception.message": message}
                ),
            }
        ]
    return span


# One encoder for every span: json.dumps() with options builds a new one per call.
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def _masked_json(
    value: list[dict[str, Any]],
    masker: Callable[[list[dict[str, Any]], frozenset[str]], list[dict[str, Any]]],
    keys: frozenset[str],
) -> str:
    """``value`` as JSON text, masked by ``keys``.

    Encoded first and masked only when the text names a masked key: masking changes nothing
    in content that mentions none of them (most prompts and answers), and one scan of the
    encoded text costs a fraction of copying and scanning every part.
    """
    text = _json(value)
    if keys and mentions_any(text, keys):
        text = _json(masker(value, keys))
    return text


def mask_parts(parts: list[dict[str, Any]], keys: frozenset[str]) -> list[dict[str, Any]]:
    """Parts with secrets masked: by key in structured values, by pattern in text."""
    out = []
    for part in parts:
        masked = mask(part, keys) if keys else dict(part)
        for name in ("content", "arguments", "response"):
            value = masked.get(name)
            if isinstance(value, str) and keys:
                masked[name] = mask_text(value, keys)
        out.append(masked)
    return out


def mask_messages(messages: list[dict[str, Any]], keys: frozenset[str]) -> list[dict[str, Any]]:
    return [
        {**message, "parts": mask_parts(message.get("parts", []), keys)} for message in messages
    ]


def find_prompt(kwargs: Mapping[str, Any]) -> tuple[str, int] | None:
    """The library prompt (id, version) the call was made with, when its text is among the
    call's arguments as ``Collector.prompt()`` compiled it (a ``str`` that knows its prompt)."""
    if not CompiledPrompt.made:
        return None
    for key in _PROMPT_KEYS:
        found = _walk_for_prompt(kwargs.get(key), 0)
        if found is not None:
            return found
    return None


def _walk_for_prompt(value: Any, depth: int) -> tuple[str, int] | None:
    kind = type(value)
    # A plain str (nearly every value) cannot know its prompt: only a compiled one can.
    if kind is str or value is None or depth > _MAX_WALK_DEPTH:
        return None
    if isinstance(value, str):
        origin = getattr(value, "logharbor_prompt", None)
        return origin if isinstance(origin, tuple) else None
    items: Any
    if kind is list or kind is tuple:
        items = value
    elif kind is dict or isinstance(value, Mapping):
        items = value.values()
    else:
        items = [getattr(value, name, None) for name in ("content", "text")]
    for item in items:
        found = _walk_for_prompt(item, depth + 1)
        if found is not None:
            return found
    return None


# --- reading SDK objects (pydantic models, or plain dicts) ---------------------------------


# Whether a type is a Mapping, per type: ``isinstance(x, Mapping)`` is an ABC check, and the
# sender asks it of every SDK object it reads, tens of times per span.
_MAPPING_TYPES: dict[type, bool] = {dict: True}


def get(value: Any, name: str) -> Any:
    kind = type(value)
    mapping = _MAPPING_TYPES.get(kind)
    if mapping is None:
        mapping = _MAPPING_TYPES[kind] = issubclass(kind, Mapping)
    if mapping:
        return value.get(name)
    return getattr(value, name, None)


def given(value: Any) -> TypeGuard[Any]:
    """Whether an argument was given: not None and not the SDKs' ``omit``/``NOT_GIVEN``."""
    return value is not None and type(value).__name__ not in ("Omit", "NotGiven")


def plain(value: Any) -> Any:
    """A dict for a pydantic model (a message the app passed back as the SDK returned it)."""
    dump = getattr(value, "model_dump", None)
    if dump is not None and not isinstance(value, Mapping):
        try:
            return dump()
        except Exception:
            return value
    return value


def int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def text_part(content: Any) -> dict[str, Any]:
    return {"type": "text", "content": content if isinstance(content, str) else str(content)}


def arguments(raw: Any) -> Any:
    """Tool call arguments: the object when they are JSON text (so keys can be masked)."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def tool_call_part(call_id: Any, name: Any, raw_arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments(raw_arguments)}


def media_part(modality: str, url: Any, mime_type: Any = None) -> dict[str, Any]:
    """An image or file by reference; inline data is named, not copied (it can be megabytes)."""
    if isinstance(url, str) and not url.startswith("data:"):
        return {"type": "uri", "modality": modality, "uri": url}
    part: dict[str, Any] = {
        "type": "blob",
        "modality": modality,
        "content": "[inline data omitted]",
    }
    if isinstance(mime_type, str):
        part["mime_type"] = mime_type
    return part
