"""The ``anthropic`` SDK: messages, sync and async, streamed (``stream=True`` and the
``messages.stream(...)`` helper) or not.

``Collector.instrument_anthropic()`` replaces ``create`` and ``stream`` of ``messages`` on the
SDK's resource classes, so every client is covered. The helper's stream is observed below its
event accumulation (the raw server events), so ``text_stream``, ``get_final_message()`` and
plain iteration are all seen. Imported only by that call.

``gen_ai.usage.input_tokens`` counts every input token, as the conventions ask: Anthropic's
``input_tokens`` plus the tokens read from and written to the prompt cache (Anthropic reports
those apart); ``gen_ai.usage.cache_read.input_tokens`` are the ones read from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from anthropic import AsyncStream, Stream
from anthropic.resources.messages import AsyncMessages, Messages

from logharbor.collector.llm import (
    Patches,
    Summary,
    async_method,
    async_request,
    get,
    given,
    int_or_none,
    media_part,
    plain,
    sync_method,
    sync_request,
    text_part,
    tool_call_part,
)

PATCHES = Patches()
STREAMS: tuple[type, ...] = (Stream, AsyncStream)
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_call",
}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    for raw in content:
        block = plain(raw)
        kind = get(block, "type")
        if kind == "text":
            parts.append(text_part(get(block, "text")))
        elif kind == "tool_use":
            parts.append(tool_call_part(get(block, "id"), get(block, "name"), get(block, "input")))
        elif kind == "tool_result":
            result = get(block, "content")
            if isinstance(result, list):
                result = "".join(get(piece, "text") or "" for piece in result)
            parts.append(
                {"type": "tool_call_response", "id": get(block, "tool_use_id"), "response": result}
            )
        elif kind == "thinking":
            parts.append({"type": "reasoning", "content": get(block, "thinking")})
        elif kind in ("image", "document"):
            source = get(block, "source")
            modality = "image" if kind == "image" else "document"
            parts.append(media_part(modality, get(source, "url"), get(source, "media_type")))
        else:
            parts.append({"type": str(kind)})
    return parts


class MessagesApi:
    provider = "anthropic"
    operation = "chat"

    def __init__(self) -> None:
        # Its streams' notes, made by calling it (the class is defined below).
        self.stream_notes = MessagesStreamNotes

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"gen_ai.request.model": kwargs.get("model")}
        for name in ("temperature", "top_p", "max_tokens"):
            value = kwargs.get(name)
            if given(value):
                out[f"gen_ai.request.{name}"] = value
        stop = kwargs.get("stop_sequences")
        if given(stop):
            out["gen_ai.request.stop_sequences"] = list(stop)
        return out

    def input_messages(self, kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
        out = []
        for raw in kwargs.get("messages") or ():
            message = plain(raw)
            parts = _blocks(get(message, "content"))
            role = get(message, "role")
            if parts and all(part["type"] == "tool_call_response" for part in parts):
                role = "tool"
            out.append({"role": role, "parts": parts})
        return out

    def system_instructions(self, kwargs: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        system = kwargs.get("system")
        if not given(system):
            return None
        return _blocks(system)

    def summarize(self, result: Any) -> Summary:
        model, answer_id = get(result, "model"), get(result, "id")
        summary = Summary(
            response_model=model if isinstance(model, str) else None,
            response_id=answer_id if isinstance(answer_id, str) else None,
        )
        content = get(result, "content")
        if content is None:
            return summary  # a raw response (``with_raw_response``): nothing parsed to read
        reason = get(result, "stop_reason")
        if isinstance(reason, str):
            summary.finish_reasons = [reason]
        summary.output_messages = [
            {
                "role": "assistant",
                "parts": _blocks(content),
                "finish_reason": _FINISH.get(reason, str(reason)),
            }
        ]
        _usage(summary, get(result, "usage"))
        return summary


class MessagesStreamNotes:
    """A streamed message's raw server events, noted as they pass."""

    __slots__ = ("blocks", "pieces", "reason", "response_id", "response_model", "usages")

    def __init__(self) -> None:
        self.response_id: Any = None
        self.response_model: Any = None
        # Per content block index: its (type, tool id, tool name), and its text or JSON pieces.
        self.blocks: dict[int, tuple[Any, Any, Any]] = {}
        self.pieces: dict[int, list[str]] = {}
        self.reason: Any = None
        # The token counts of message_start and of each message_delta, as given.
        self.usages: list[tuple[Any, ...]] = []

    def note(self, events: list[Any], failed: Callable[[], None]) -> int:
        first = -1
        for position, event in enumerate(events):
            try:
                kind = event.type
                if kind == "content_block_delta":
                    if first < 0:
                        first = position
                    delta = event.delta
                    delta_kind = delta.type
                    # By type: reading a field a delta lacks costs a raised AttributeError.
                    if delta_kind == "text_delta":
                        piece = delta.text
                    elif delta_kind == "input_json_delta":
                        piece = delta.partial_json
                    elif delta_kind == "thinking_delta":
                        piece = delta.thinking
                    else:
                        continue
                    if piece:
                        index = event.index or 0
                        pieces = self.pieces.get(index)
                        if pieces is None:
                            pieces = self.pieces[index] = []
                        pieces.append(piece)
                elif kind == "message_start":
                    message = event.message
                    self.response_id = message.id
                    self.response_model = message.model
                    self.usages.append(_usage_counts(message.usage))
                elif kind == "content_block_start":
                    block = event.content_block
                    block_kind = block.type
                    if block_kind == "tool_use":
                        self.blocks[event.index or 0] = (block_kind, block.id, block.name)
                    else:
                        self.blocks[event.index or 0] = (block_kind, None, None)
                elif kind == "message_delta":
                    self.reason = event.delta.stop_reason or self.reason
                    self.usages.append(_usage_counts(event.usage))
            except Exception:
                failed()
        return first

    def summary(self) -> Summary:
        summary = Summary(response_id=self.response_id, response_model=self.response_model)
        blocks, pieces = self.blocks, self.pieces
        parts = []
        for index in sorted(set(blocks) | set(pieces)):
            kind, tool_id, name = blocks.get(index, ("text", None, None))
            text = "".join(pieces.get(index, ()))
            if kind == "tool_use":
                parts.append(tool_call_part(tool_id, name, text or "{}"))
            elif kind == "thinking":
                parts.append({"type": "reasoning", "content": text})
            else:
                parts.append(text_part(text))
        reason = self.reason
        if isinstance(reason, str):
            summary.finish_reasons = [reason]
        summary.output_messages = [
            {
                "role": "assistant",
                "parts": parts,
                "finish_reason": _FINISH.get(reason, str(reason)) if reason else "error",
            }
        ]
        usage: dict[str, int] = {}
        for counts in self.usages:
            _merge_usage(usage, dict(zip(_USAGE_COUNTS, counts, strict=True)))
        _usage(summary, usage or None)
        return summary


_USAGE_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


def _usage_counts(usage: Any) -> tuple[Any, ...]:
    """A stream event's token counts, read as they pass (an SDK without one of them: None)."""
    return (
        getattr(usage, "input_tokens", None),
        getattr(usage, "output_tokens", None),
        getattr(usage, "cache_read_input_tokens", None),
        getattr(usage, "cache_creation_input_tokens", None),
    )


def _merge_usage(into: dict[str, Any], usage: Any) -> None:
    # message_delta's usage is cumulative, and newer servers repeat the input counts there.
    for name in _USAGE_COUNTS:
        value = int_or_none(get(usage, name))
        if value is not None:
            into[name] = value


def _usage(summary: Summary, usage: Any) -> None:
    if usage is None:
        return
    fresh = int_or_none(get(usage, "input_tokens"))
    read = int_or_none(get(usage, "cache_read_input_tokens"))
    written = int_or_none(get(usage, "cache_creation_input_tokens"))
    if fresh is not None:
        summary.input_tokens = fresh + (read or 0) + (written or 0)
    summary.output_tokens = int_or_none(get(usage, "output_tokens"))
    summary.cached_tokens = read


MESSAGES = MessagesApi()


def _stream_helper(original: Any, asynchronous: bool) -> Any:
    """``messages.stream(...)``: its manager makes the request when entered; that request is
    captured then, with the helper's arguments."""

    def stream(self: Any, *args: Any, **kwargs: Any) -> Any:
        manager = original(self, *args, **kwargs)
        collector = PATCHES.collector
        if collector is None:
            return manager
        try:
            name = next(key for key in vars(manager) if key.endswith("__api_request"))
            request = getattr(manager, name)
            arguments = {**kwargs, "stream": True}
            if asynchronous:
                wrapped: Any = async_request(collector, MESSAGES, arguments, request, STREAMS)
            else:
                wrapped = sync_request(collector, MESSAGES, arguments, request, STREAMS)
            setattr(manager, name, wrapped)
        except Exception:
            collector.capture_failed()
        return manager

    stream.__doc__ = original.__doc__
    return stream


def install() -> None:
    if PATCHES.installed:
        return
    PATCHES.replace(Messages, "create", lambda f: sync_method(PATCHES, MESSAGES, f, STREAMS))
    PATCHES.replace(AsyncMessages, "create", lambda f: async_method(PATCHES, MESSAGES, f, STREAMS))
    PATCHES.replace(Messages, "stream", lambda f: _stream_helper(f, asynchronous=False))
    PATCHES.replace(AsyncMessages, "stream", lambda f: _stream_helper(f, asynchronous=True))
