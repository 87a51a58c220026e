"""The ``openai`` SDK: chat completions and the responses API, sync and async, streamed or not.

``Collector.instrument_openai()`` replaces ``create`` of ``chat.completions`` and
``responses`` on the SDK's resource classes, so every client is covered, including the
``.stream()`` helpers (they call ``create``). Imported only by that call.

Streamed chat completions report token usage only when the app asks for it
(``stream_options={"include_usage": True}``): the collector does not add it, because the extra
last chunk (with no choices) would reach the app's code too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from openai import AsyncStream, Stream
from openai.resources.chat.completions import AsyncCompletions, Completions
from openai.resources.responses import AsyncResponses, Responses

from logharbor.collector.llm import (
    Patches,
    Summary,
    async_method,
    get,
    given,
    int_or_none,
    media_part,
    plain,
    sync_method,
    text_part,
    tool_call_part,
)

PATCHES = Patches()
STREAMS: tuple[type, ...] = (Stream, AsyncStream)


def _common_parameters(kwargs: Mapping[str, Any], max_tokens: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"gen_ai.request.model": kwargs.get("model")}
    for name in ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty"):
        value = kwargs.get(name)
        if given(value):
            out[f"gen_ai.request.{name}"] = value
    if given(max_tokens):
        out["gen_ai.request.max_tokens"] = max_tokens
    stop = kwargs.get("stop")
    if given(stop):
        out["gen_ai.request.stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    return out


def _finish(reason: Any) -> str:
    """A finish reason as the conventions' output messages name it."""
    if reason in ("tool_calls", "function_call"):
        return "tool_call"
    return reason if isinstance(reason, str) else "stop"


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    if not isinstance(content, list):
        return [text_part(content)]
    for item in content:
        item = plain(item)
        kind = get(item, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(text_part(get(item, "text")))
        elif kind == "refusal":
            parts.append(text_part(get(item, "refusal")))
        elif kind == "image_url":
            parts.append(media_part("image", get(get(item, "image_url"), "url")))
        elif kind == "input_image":
            parts.append(media_part("image", get(item, "image_url")))
        elif kind in ("input_audio",):
            parts.append(media_part("audio", None))
        elif kind in ("file", "input_file"):
            parts.append({"type": "file"})
        else:
            parts.append({"type": str(kind)})
    return parts


class ChatCompletions:
    provider = "openai"
    operation = "chat"

    def __init__(self) -> None:
        # Its streams' notes, made by calling it (the class is defined below).
        self.stream_notes = ChatStreamNotes

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        limit = kwargs.get("max_completion_tokens")
        if not given(limit):
            limit = kwargs.get("max_tokens")
        return _common_parameters(kwargs, limit)

    def input_messages(self, kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
        out = []
        for raw in kwargs.get("messages") or ():
            message = plain(raw)
            role = get(message, "role")
            if role == "tool":
                parts = [
                    {
                        "type": "tool_call_response",
                        "id": get(message, "tool_call_id"),
                        "response": get(message, "content"),
                    }
                ]
            else:
                parts = _content_parts(get(message, "content"))
                for call in get(message, "tool_calls") or ():
                    function = get(call, "function")
                    parts.append(
                        tool_call_part(
                            get(call, "id"), get(function, "name"), get(function, "arguments")
                        )
                    )
            out.append({"role": role, "parts": parts})
        return out

    def system_instructions(self, kwargs: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        return None  # system messages are part of the chat history: in the input messages

    def summarize(self, result: Any) -> Summary:
        summary = _response_header(result)
        choices = get(result, "choices")
        if choices is None:
            return summary  # a raw response (``with_raw_response``): nothing parsed to read
        summary.output_messages = []
        for choice in choices:
            message = get(choice, "message")
            parts = _content_parts(get(message, "content"))
            refusal = get(message, "refusal")
            if refusal:
                parts.append(text_part(refusal))
            for call in get(message, "tool_calls") or ():
                function = get(call, "function")
                parts.append(
                    tool_call_part(
                        get(call, "id"), get(function, "name"), get(function, "arguments")
                    )
                )
            reason = get(choice, "finish_reason")
            if isinstance(reason, str):
                summary.finish_reasons.append(reason)
            summary.output_messages.append(
                {"role": "assistant", "parts": parts, "finish_reason": _finish(reason)}
            )
        _chat_usage(summary, get(result, "usage"))
        return summary


class ChatStreamNotes:
    """A streamed chat completion's chunks (``ChatCompletionChunk``), noted as they pass."""

    __slots__ = ("calls", "reasons", "response_id", "response_model", "texts", "usage")

    def __init__(self) -> None:
        self.response_id: Any = None
        self.response_model: Any = None
        # Per choice: its text pieces, its tool calls' pieces by index, its finish reason.
        self.texts: dict[int, list[str]] = {}
        self.calls: dict[int, dict[int, dict[str, Any]]] = {}
        self.reasons: dict[int, Any] = {}
        self.usage: tuple[Any, Any, Any] | None = None

    def note(self, chunks: list[Any], failed: Callable[[], None]) -> int:
        first = -1
        texts = self.texts
        for position, chunk in enumerate(chunks):
            output = False
            try:
                if self.response_id is None:
                    self.response_id = chunk.id
                    self.response_model = chunk.model
                for choice in chunk.choices or ():
                    delta = choice.delta
                    content = delta.content
                    refusal = delta.refusal
                    if content or refusal:
                        index = choice.index or 0
                        pieces = texts.get(index)
                        if pieces is None:
                            pieces = texts[index] = []
                        if content:
                            pieces.append(content)
                        if refusal:
                            pieces.append(refusal)
                        output = True
                    tool_calls = delta.tool_calls
                    if tool_calls:
                        self._note_tool_calls(choice.index or 0, tool_calls)
                        output = True
                    reason = choice.finish_reason
                    if reason is not None:
                        self.reasons[choice.index or 0] = reason
                usage = chunk.usage
                if usage is not None:
                    details = usage.prompt_tokens_details
                    # As given; checked in the sender thread.
                    self.usage = (
                        usage.prompt_tokens,
                        usage.completion_tokens,
                        None if details is None else details.cached_tokens,
                    )
            except Exception:
                failed()
            if output and first < 0:
                first = position
        return first

    def _note_tool_calls(self, index: int, tool_calls: Any) -> None:
        slots = self.calls.setdefault(index, {})
        for piece in tool_calls:
            slot = slots.setdefault(
                get(piece, "index") or 0, {"id": None, "name": None, "arguments": []}
            )
            function = get(piece, "function")
            slot["id"] = slot["id"] or get(piece, "id")
            slot["name"] = slot["name"] or get(function, "name")
            arguments = get(function, "arguments")
            if arguments:
                slot["arguments"].append(arguments)

    def summary(self) -> Summary:
        summary = Summary(response_id=self.response_id, response_model=self.response_model)
        if self.usage is not None:
            fresh, output, cached = self.usage
            summary.input_tokens = int_or_none(fresh)
            summary.output_tokens = int_or_none(output)
            summary.cached_tokens = int_or_none(cached)
        texts, calls = self.texts, self.calls
        reasons = {index: why for index, why in self.reasons.items() if isinstance(why, str)}
        summary.output_messages = []
        for index in sorted(set(texts) | set(calls) | set(reasons)):
            parts = [text_part("".join(texts[index]))] if index in texts else []
            for _, slot in sorted(calls.get(index, {}).items()):
                parts.append(tool_call_part(slot["id"], slot["name"], "".join(slot["arguments"])))
            message: dict[str, Any] = {"role": "assistant", "parts": parts}
            message["finish_reason"] = _finish(reasons.get(index)) if index in reasons else "error"
            summary.output_messages.append(message)
        summary.finish_reasons = [reasons[index] for index in sorted(reasons)]
        return summary


def _response_header(result: Any) -> Summary:
    model, answer_id = get(result, "model"), get(result, "id")
    return Summary(
        response_model=model if isinstance(model, str) else None,
        response_id=answer_id if isinstance(answer_id, str) else None,
    )


def _chat_usage(summary: Summary, usage: Any) -> None:
    if usage is None:
        return
    summary.input_tokens = int_or_none(get(usage, "prompt_tokens"))
    summary.output_tokens = int_or_none(get(usage, "completion_tokens"))
    summary.cached_tokens = int_or_none(get(get(usage, "prompt_tokens_details"), "cached_tokens"))


class ResponsesApi:
    provider = "openai"
    operation = "chat"

    def __init__(self) -> None:
        # Its streams' notes, made by calling it (the class is defined below).
        self.stream_notes = ResponsesStreamNotes

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return _common_parameters(kwargs, kwargs.get("max_output_tokens"))

    def input_messages(self, kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
        given_input = kwargs.get("input")
        if not given(given_input):
            return []
        if isinstance(given_input, str):
            return [{"role": "user", "parts": [text_part(given_input)]}]
        out = []
        for raw in given_input:
            item = plain(raw)
            kind = get(item, "type")
            if kind == "function_call":
                parts = [
                    tool_call_part(get(item, "call_id"), get(item, "name"), get(item, "arguments"))
                ]
                out.append({"role": "assistant", "parts": parts})
            elif kind == "function_call_output":
                part = {
                    "type": "tool_call_response",
                    "id": get(item, "call_id"),
                    "response": get(item, "output"),
                }
                out.append({"role": "tool", "parts": [part]})
            elif get(item, "role") is not None:
                out.append(
                    {"role": get(item, "role"), "parts": _content_parts(get(item, "content"))}
                )
            else:
                out.append({"role": "user", "parts": [{"type": str(kind)}]})
        return out

    def system_instructions(self, kwargs: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        instructions = kwargs.get("instructions")
        return [text_part(instructions)] if isinstance(instructions, str) else None

    def summarize(self, result: Any) -> Summary:
        summary = _response_header(result)
        output = get(result, "output")
        if output is None:
            return summary
        parts: list[dict[str, Any]] = []
        calls = False
        for item in output:
            kind = get(item, "type")
            if kind == "message":
                parts.extend(_content_parts(get(item, "content")))
            elif kind == "function_call":
                calls = True
                parts.append(
                    tool_call_part(get(item, "call_id"), get(item, "name"), get(item, "arguments"))
                )
            elif kind == "reasoning":
                texts = [get(piece, "text") or "" for piece in get(item, "summary") or ()]
                if any(texts):
                    parts.append({"type": "reasoning", "content": "\n".join(texts)})
        status = get(result, "status")
        if status == "completed":
            reason = "tool_call" if calls else "stop"
        elif status == "incomplete":
            why = get(get(result, "incomplete_details"), "reason")
            reason = "length" if why == "max_output_tokens" else str(why or "incomplete")
        else:
            reason = "error" if status == "failed" else str(status)
        summary.finish_reasons = [reason]
        summary.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": reason}]
        usage = get(result, "usage")
        if usage is not None:
            summary.input_tokens = int_or_none(get(usage, "input_tokens"))
            summary.output_tokens = int_or_none(get(usage, "output_tokens"))
            summary.cached_tokens = int_or_none(
                get(get(usage, "input_tokens_details"), "cached_tokens")
            )
        return summary


# Events of a responses stream that carry output (for the time to first token).
_OUTPUT_EVENTS = frozenset(
    (
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "response.refusal.delta",
    )
)
_FINAL_EVENTS = frozenset(("response.completed", "response.incomplete", "response.failed"))


class ResponsesStreamNotes:
    """A streamed response's events: the response as created and as finished (the finished one
    holds everything; one object per stream), and the text that arrived, for a stream cut
    short."""

    __slots__ = ("final", "started", "texts")

    def __init__(self) -> None:
        self.started: Any = None
        self.final: Any = None
        self.texts: list[str] = []

    def note(self, events: list[Any], failed: Callable[[], None]) -> int:
        first = -1
        for position, event in enumerate(events):
            try:
                kind = event.type
                if kind == "response.output_text.delta":
                    self.texts.append(event.delta or "")
                    if first < 0:
                        first = position
                elif kind in _OUTPUT_EVENTS:
                    if first < 0:
                        first = position
                elif kind in _FINAL_EVENTS:
                    self.final = event.response
                elif kind == "response.created":
                    self.started = event.response
            except Exception:
                failed()
        return first

    def summary(self) -> Summary:
        if self.final is not None:
            return RESPONSES.summarize(self.final)
        # Cut short (closed early, or an error): what arrived.
        summary = _response_header(self.started)
        summary.output_messages = [
            {
                "role": "assistant",
                "parts": [text_part("".join(self.texts))],
                "finish_reason": "error",
            }
        ]
        return summary


CHAT = ChatCompletions()
RESPONSES = ResponsesApi()


def install() -> None:
    if PATCHES.installed:
        return
    PATCHES.replace(Completions, "create", lambda f: sync_method(PATCHES, CHAT, f, STREAMS))
    PATCHES.replace(AsyncCompletions, "create", lambda f: async_method(PATCHES, CHAT, f, STREAMS))
    PATCHES.replace(Responses, "create", lambda f: sync_method(PATCHES, RESPONSES, f, STREAMS))
    PATCHES.replace(
        AsyncResponses, "create", lambda f: async_method(PATCHES, RESPONSES, f, STREAMS)
    )
