"""A fake OpenAI and Anthropic on 127.0.0.1 for the LLM capture tests (served by uvicorn).

It answers the real wire shapes: ``POST /v1/chat/completions`` and ``POST /v1/responses``
(OpenAI) and ``POST /v1/messages`` (Anthropic), in plain JSON or as SSE streams, with usage
where the providers put it (OpenAI's last chunk when ``stream_options.include_usage`` is set;
Anthropic's ``message_start`` and ``message_delta``). The model name picks a behaviour:

- ``rate-limited`` / ``broken``: 429 / 500 with the provider's error body;
- ``stall``: no answer until ``release`` is set (for client timeouts);
- ``gated``: a stream that sends its first content chunk, then waits for ``gate``;
- ``cut``: a stream whose connection breaks after its first content chunk.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

WORDS = ["Hello", " from", " the", " fake", " model."]
REPLY = "".join(WORDS)
CREATED = 1_767_225_600


class StreamCut(Exception):
    """Raised inside a streamed answer: the server aborts the connection mid-body."""


@dataclass
class FakeProvider:
    requests: list[dict[str, Any]] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    # Set once a gated stream has sent its first content chunk.
    first_chunk_sent: threading.Event = field(default_factory=threading.Event)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/responses", self.responses, methods=["POST"]),
                Route("/v1/messages", self.messages, methods=["POST"]),
            ]
        )

    async def _body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        self.requests.append(body)
        if body.get("model") == "stall":
            await asyncio.to_thread(self.release.wait)
        return body

    async def _wait_gate(self, model: str) -> None:
        """Called by every stream after its first content chunk."""
        if model == "cut":
            raise StreamCut(model)
        if model == "gated":
            self.first_chunk_sent.set()
            await asyncio.to_thread(self.gate.wait)

    # --- OpenAI chat completions ----------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        body = await self._body(request)
        model = body["model"]
        failure = _openai_failure(model)
        if failure is not None:
            return failure
        usage = {
            "prompt_tokens": 21,
            "completion_tokens": 5,
            "total_tokens": 26,
            "prompt_tokens_details": {"cached_tokens": 8, "audio_tokens": 0},
        }
        answered = f"{model}-2024-07-18"
        tools = bool(body.get("tools"))
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": REPLY, "refusal": None}
            if tools:
                message = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "lookup",
                                "arguments": '{"order": 7, "password": "p"}',
                            },
                        }
                    ],
                }
            return JSONResponse(
                {
                    "id": "chatcmpl-fake1",
                    "object": "chat.completion",
                    "created": CREATED,
                    "model": answered,
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "logprobs": None,
                            "finish_reason": "tool_calls" if tools else "stop",
                        }
                    ],
                    "usage": usage,
                    "system_fingerprint": "fp_fake",
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
            out = {
                "id": "chatcmpl-fake2",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": answered,
                "system_fingerprint": "fp_fake",
                "choices": choices,
                **extra,
            }
            if include_usage:
                out.setdefault("usage", None)
            return out

        async def events() -> AsyncIterator[bytes]:
            yield _data(
                chunk(
                    [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ]
                )
            )
            for n, word in enumerate(WORDS):
                yield _data(
                    chunk([{"index": 0, "delta": {"content": word}, "finish_reason": None}])
                )
                if n == 0:
                    await self._wait_gate(model)
            yield _data(chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
            if include_usage:
                yield _data(chunk([], usage=usage))
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    # --- OpenAI responses -----------------------------------------------------------------------

    async def responses(self, request: Request) -> Response:
        body = await self._body(request)
        model = body["model"]
        failure = _openai_failure(model)
        if failure is not None:
            return failure

        def response(status: str, text: str | None) -> dict[str, Any]:
            output = []
            if text is not None:
                output = [
                    {
                        "type": "message",
                        "id": "msg_fake",
                        "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": text, "annotations": []}],
                    }
                ]
            return {
                "id": "resp_fake1",
                "object": "response",
                "created_at": CREATED,
                "status": status,
                "model": f"{model}-2024-07-18",
                "output": output,
                "instructions": body.get("instructions"),
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "temperature": body.get("temperature"),
                "top_p": body.get("top_p"),
                "max_output_tokens": body.get("max_output_tokens"),
                "usage": None
                if status != "completed"
                else {
                    "input_tokens": 30,
                    "input_tokens_details": {"cached_tokens": 10},
                    "output_tokens": 5,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": 35,
                },
            }

        if not body.get("stream"):
            return JSONResponse(response("completed", REPLY))

        async def events() -> AsyncIterator[bytes]:
            seq = iter(range(1000))

            def event(kind: str, **fields: Any) -> bytes:
                payload = {"type": kind, "sequence_number": next(seq), **fields}
                return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()

            yield event("response.created", response=response("in_progress", None))
            yield event("response.in_progress", response=response("in_progress", None))
            item = {
                "type": "message",
                "id": "msg_fake",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            yield event("response.output_item.added", output_index=0, item=item)
            part = {"type": "output_text", "text": "", "annotations": []}
            yield event(
                "response.content_part.added",
                item_id="msg_fake",
                output_index=0,
                content_index=0,
                part=part,
            )
            for n, word in enumerate(WORDS):
                yield event(
                    "response.output_text.delta",
                    item_id="msg_fake",
                    output_index=0,
                    content_index=0,
                    delta=word,
                    logprobs=[],
                )
                if n == 0:
                    await self._wait_gate(model)
            yield event(
                "response.output_text.done",
                item_id="msg_fake",
                output_index=0,
                content_index=0,
                text=REPLY,
                logprobs=[],
            )
            done_part = {"type": "output_text", "text": REPLY, "annotations": []}
            yield event(
                "response.content_part.done",
                item_id="msg_fake",
                output_index=0,
                content_index=0,
                part=done_part,
            )
            finished = response("completed", REPLY)
            yield event("response.output_item.done", output_index=0, item=finished["output"][0])
            yield event("response.completed", response=finished)

        return StreamingResponse(events(), media_type="text/event-stream")

    # --- Anthropic messages ---------------------------------------------------------------------

    async def messages(self, request: Request) -> Response:
        body = await self._body(request)
        model = body["model"]
        if model == "rate-limited":
            return _anthropic_error(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            )
        if model == "broken":
            return _anthropic_error(500, "api_error", "Internal server error")
        usage = {
            "input_tokens": 12,
            "output_tokens": 5,
            "cache_read_input_tokens": 6,
            "cache_creation_input_tokens": 2,
        }
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": "msg_fake1",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": REPLY}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": usage,
                }
            )

        async def events() -> AsyncIterator[bytes]:
            def event(kind: str, **fields: Any) -> bytes:
                return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()

            start_usage = {**usage, "output_tokens": 1}
            message = {
                "id": "msg_fake2",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            }
            yield event("message_start", message=message)
            yield event("content_block_start", index=0, content_block={"type": "text", "text": ""})
            yield event("ping")
            for n, word in enumerate(WORDS):
                yield event(
                    "content_block_delta", index=0, delta={"type": "text_delta", "text": word}
                )
                if n == 0:
                    await self._wait_gate(model)
            yield event("content_block_stop", index=0)
            yield event(
                "message_delta",
                delta={"stop_reason": "end_turn", "stop_sequence": None},
                usage={"output_tokens": 5},
            )
            yield event("message_stop")

        return StreamingResponse(events(), media_type="text/event-stream")


def _data(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _openai_failure(model: str) -> Response | None:
    if model == "rate-limited":
        return _openai_error(429, "Rate limit reached for requests", "requests")
    if model == "broken":
        return _openai_error(
            500, "The server had an error while processing your request.", "server_error"
        )
    return None


def _openai_error(status: int, message: str, kind: str) -> Response:
    code = "rate_limit_exceeded" if status == 429 else None
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}, status
    )


def _anthropic_error(status: int, kind: str, message: str) -> Response:
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status)
