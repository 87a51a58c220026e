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

from collections.abc import Mapping, Sequence
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

    def summarize_stream(self, chunks: Sequence[Any]) -> Summary:
        summary = Summary()
        blocks: dict[int, dict[str, Any]] = {}
        reason = None
        usage: dict[str, Any] = {}
        for event in chunks:
            kind = get(event, "type")
            if kind == "message_start":
                message = get(event, "message")
                summary.response_id = get(message, "id")
                summary.response_model = get(message, "model")
                _merge_usage(usage, get(message, "usage"))
            elif kind == "content_block_start":
                block = plain(get(event, "content_block"))
                blocks[get(event, "index") or 0] = {
                    "type": get(block, "type"),
                    "id": get(block, "id"),
                    "name": get(block, "name"),
                    "pieces": [],
                }
            elif kind == "content_block_delta":
                slot = blocks.setdefault(
                    get(event, "index") or 0,
                    {"type": "text", "id": None, "name": None, "pieces": []},
                )
                delta = get(event, "delta")
                piece = get(delta, "text") or get(delta, "partial_json") or get(delta, "thinking")
                if piece:
                    slot["pieces"].append(piece)
            elif kind == "message_delta":
                reason = get(get(event, "delta"), "stop_reason") or reason
                _merge_usage(usage, get(event, "usage"))
        parts = []
        for _, slot in sorted(blocks.items()):
            text = "".join(slot["pieces"])
            if slot["type"] == "tool_use":
                parts.append(tool_call_part(slot["id"], slot["name"], text or "{}"))
            elif slot["type"] == "thinking":
                parts.append({"type": "reasoning", "content": text})
            else:
                parts.append(text_part(text))
        if isinstance(reason, str):
            summary.finish_reasons = [reason]
        summary.output_messages = [
            {
                "role": "assistant",
                "parts": parts,
                "finish_reason": _FINISH.get(reason, str(reason)) if reason else "error",
            }
        ]
        _usage(summary, usage or None)
        return summary

    def has_output(self, chunk: Any) -> bool:
        return bool(get(chunk, "type") == "content_block_delta")


def _merge_usage(into: dict[str, Any], usage: Any) -> None:
    # message_delta's usage is cumulative, and newer servers repeat the input counts there.
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ):
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
