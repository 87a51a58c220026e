"""LLM call capture with the real ``openai`` and ``anthropic`` SDKs against a fake provider on
127.0.0.1, inside a real FastAPI app (uvicorn) with the collector's middleware, called over HTTP.

The spans are read where the collector sends them: a stand_in standing in for LogHarbor
(``/v1/traces`` for spans, ``/api/v1/ingest`` for the traffic records), and each OTLP body is
decoded with ``opentelemetry-proto``'s own JSON parser, so it is OTLP as any stand_in reads it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import types
import weakref
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from google.protobuf import json_format
from openai.resources.chat.completions import Completions
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.fake_provider import REPLY, WORDS, FakeProvider
from collector.harness import MemoryTransport, StandInServer, drain, serve_asgi
from fixtures.waiting import wait_until
from logharbor.collector import (
    Collector,
    HttpTransport,
    LogHarborASGIMiddleware,
    llm,
    llm_anthropic,
)
from logharbor.collector.llm_anthropic import MessagesStreamNotes
from logharbor.collector.llm_openai import ChatCompletions
from logharbor.collector.redaction import mentions_any, normalize_keys

SECRET = "hunter2-secret"


@pytest.fixture
def provider() -> Iterator[tuple[FakeProvider, str]]:
    fake = FakeProvider()
    with serve_asgi(fake.app()) as served:
        try:
            yield fake, served.url
        finally:
            fake.gate.set()
            fake.release.set()


def instrumented(collector: Collector) -> Collector:
    collector.instrument_openai()
    collector.instrument_anthropic()
    return collector


@pytest.fixture
def memory_llm() -> Iterator[tuple[Collector, MemoryTransport]]:
    transport = MemoryTransport()
    collector = instrumented(Collector(transport=transport, flush_interval=0.05))
    try:
        yield collector, transport
    finally:
        collector.uninstrument_openai()
        collector.uninstrument_anthropic()
        collector.close()


Sdks = tuple[openai.OpenAI, anthropic.Anthropic]


@pytest.fixture
def sdks(provider: tuple[FakeProvider, str]) -> Iterator[Sdks]:
    """Both SDKs' sync clients on the fake provider, closed (with their keep-alive connections)
    before the provider stops."""
    url = provider[1]
    # No retries: a 429 from the fake provider is the answer under test, not a reason to wait.
    with (
        openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0) as sync_openai,
        anthropic.Anthropic(base_url=url, api_key="sk-ant-test", max_retries=0) as sync_anthropic,
    ):
        yield sync_openai, sync_anthropic


# The app's async clients are made and closed inside each request: a client's connections belong
# to the event loop that opened them, and one left open warns when the served app's loop closes.
def async_openai(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)


def async_anthropic(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="sk-ant-test", max_retries=0)


def attrs(span: dict[str, Any]) -> dict[str, Any]:
    """A span's attributes as plain values (ints from their strings, arrays as lists)."""

    def plain(value: dict[str, Any]) -> Any:
        ((kind, raw),) = value.items()
        if kind == "intValue":
            return int(raw)
        if kind == "arrayValue":
            return [plain(item) for item in raw["values"]]
        return raw

    return {item["key"]: plain(item["value"]) for item in span["attributes"]}


USER_MESSAGE = f"Summarize the ticket. password={SECRET}"
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": USER_MESSAGE},
]


def llm_app(collector: Collector, provider_url: str, sdks: Sdks) -> FastAPI:
    app = FastAPI()
    sync_openai, sync_anthropic = sdks

    @app.get("/openai/chat/{ticket_id}")
    def openai_chat(ticket_id: int) -> dict[str, Any]:
        answer = sync_openai.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            temperature=0.2,
            top_p=0.9,
            max_tokens=64,
            stop=["END"],
            seed=7,
            frequency_penalty=0.1,
            presence_penalty=0.3,
        )
        return {"text": answer.choices[0].message.content}

    @app.get("/openai/chat-stream")
    async def openai_chat_stream() -> dict[str, Any]:
        async with async_openai(provider_url) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        return {"text": "".join(pieces)}

    @app.get("/openai/responses")
    def openai_responses() -> dict[str, Any]:
        answer = sync_openai.responses.create(
            model="gpt-4o-mini",
            input=USER_MESSAGE,
            instructions="Answer in one line.",
            max_output_tokens=50,
        )
        return {"text": answer.output_text}

    @app.get("/openai/responses-stream")
    async def openai_responses_stream() -> dict[str, Any]:
        async with async_openai(provider_url) as client:
            stream = await client.responses.create(
                model="gpt-4o-mini", input=USER_MESSAGE, stream=True
            )
            pieces = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        return {"text": "".join(pieces)}

    @app.get("/anthropic/messages")
    async def anthropic_messages() -> dict[str, Any]:
        async with async_anthropic(provider_url) as client:
            answer = await client.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=100,
                system="You are terse.",
                messages=[{"role": "user", "content": USER_MESSAGE}],
                stop_sequences=["END"],
            )
        return {"text": answer.content[0].text}  # type: ignore[union-attr]

    @app.get("/anthropic/stream-helper")
    def anthropic_stream_helper() -> dict[str, Any]:
        with sync_anthropic.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=100,
            messages=[{"role": "user", "content": USER_MESSAGE}],
        ) as stream:
            return {"text": "".join(stream.text_stream)}

    @app.get("/anthropic/stream")
    async def anthropic_stream() -> dict[str, Any]:
        async with async_anthropic(provider_url) as client:
            stream = await client.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=100,
                messages=[{"role": "user", "content": USER_MESSAGE}],
                stream=True,
            )
            pieces = [e.delta.text async for e in stream if e.type == "content_block_delta"]  # type: ignore[union-attr]
        return {"text": "".join(pieces)}

    @app.get("/openai/rate-limited")
    def rate_limited(request: Request) -> dict[str, Any]:
        try:
            sync_openai.chat.completions.create(model="rate-limited", messages=MESSAGES)
        except openai.RateLimitError as error:
            return {"error": type(error).__name__, "status": error.status_code}
        return {"error": None}

    app.add_middleware(LogHarborASGIMiddleware, collector=collector)
    return app


def accept_spans(stand_in: StandInServer) -> None:
    stand_in.reply = lambda hit: (200, {}, {}) if hit.path == "/v1/traces" else None


def sent_spans(stand_in: StandInServer) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The spans that reached ``/v1/traces`` and their resources; each body checked as OTLP."""
    spans: list[dict[str, Any]] = []
    resources: list[dict[str, Any]] = []
    for hit in stand_in.hits:
        if hit.path != "/v1/traces":
            continue
        json_format.Parse(json.dumps(hit.body), ExportTraceServiceRequest())
        for resource_spans in hit.body["resourceSpans"]:
            resources.append(resource_spans["resource"])
            for scope in resource_spans["scopeSpans"]:
                assert scope["scope"]["name"] == "logharbor.collector"
                spans.extend(scope["spans"])
    return spans, resources


ROUTES = {
    "/openai/chat/3": ("/openai/chat/{ticket_id}", "openai", "gpt-4o-mini", False),
    "/openai/chat-stream": ("/openai/chat-stream", "openai", "gpt-4o-mini", True),
    "/openai/responses": ("/openai/responses", "openai", "gpt-4o-mini", False),
    "/openai/responses-stream": ("/openai/responses-stream", "openai", "gpt-4o-mini", True),
    "/anthropic/messages": ("/anthropic/messages", "anthropic", "claude-sonnet-4-5", False),
    "/anthropic/stream-helper": (
        "/anthropic/stream-helper",
        "anthropic",
        "claude-sonnet-4-5",
        True,
    ),
    "/anthropic/stream": ("/anthropic/stream", "anthropic", "claude-sonnet-4-5", True),
    "/openai/rate-limited": ("/openai/rate-limited", "openai", "rate-limited", False),
}


def test_llm_calls_made_while_serving_a_request_are_spans_of_its_trace(
    provider: tuple[FakeProvider, str], stand_in: StandInServer, sdks: Sdks
) -> None:
    _, provider_url = provider
    accept_spans(stand_in)
    collector = instrumented(
        Collector(
            stand_in.url,
            api_key="lhk_test-key",
            service_name="support-desk",
            flush_interval=0.05,
            masked_keys=("password",),
        )
    )
    try:
        with (
            serve_asgi(llm_app(collector, provider_url, sdks)) as app,
            httpx.Client(base_url=app.url) as http,
        ):
            for path in ROUTES:
                answer = http.get(path)
                assert answer.status_code == 200, answer.text
                if "rate-limited" in path:
                    assert answer.json() == {"error": "RateLimitError", "status": 429}
                else:
                    assert answer.json() == {"text": REPLY}
            drain(collector, 2 * len(ROUTES))
    finally:
        collector.uninstrument_openai()
        collector.uninstrument_anthropic()
        collector.close()
    assert collector.stats().capture_errors == 0

    records = {record["pathnameUrl"]: record for record in stand_in.records()}
    spans, resources = sent_spans(stand_in)
    assert len(spans) == len(ROUTES)
    for resource in resources:
        assert {"key": "service.name", "value": {"stringValue": "support-desk"}} in resource[
            "attributes"
        ]
    for hit in stand_in.hits:
        if hit.path == "/v1/traces":
            assert hit.headers["authorization"] == "Bearer lhk_test-key"
            assert "x-traffic-source-id" not in hit.headers  # an ingest key names its source

    by_record = {attrs(span)["logharbor.record.id"]: span for span in spans}
    for path, (route, provider_name, model, streamed) in ROUTES.items():
        record = records[path]
        span = by_record[record["id"]]
        values = attrs(span)
        assert span["traceId"] == record["traceId"]
        assert span["parentSpanId"] == record["spanId"]
        assert span["spanId"] not in (record["spanId"], span["parentSpanId"])
        assert span["kind"] == 3
        assert span["name"] == f"chat {model}"
        assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"]) > 0
        assert values["http.route"] == route == record["routeTemplate"]
        assert values["gen_ai.operation.name"] == "chat"
        assert values["gen_ai.provider.name"] == provider_name
        assert values["gen_ai.request.model"] == model
        assert values["logharbor.llm.streamed"] is streamed
        if streamed:
            assert values["logharbor.llm.time_to_first_token_ms"] > 0
        else:
            assert "logharbor.llm.time_to_first_token_ms" not in values
        # Content is on by default, with the collector's masking.
        assert SECRET not in json.dumps(span)
        inputs = json.loads(values["gen_ai.input.messages"])
        assert {"type": "text", "content": "Summarize the ticket. password=****"} in inputs[-1][
            "parts"
        ]
        if path == "/openai/rate-limited":
            assert span["status"] == {
                "code": 2,
                "message": "Error code: 429 - Rate limit reached for requests",
            }
            assert values["error.type"] == "RateLimitError"
            (event,) = span["events"]
            assert event["name"] == "exception"
            assert attrs(event) == {
                "exception.type": "RateLimitError",
                "exception.message": "Error code: 429 - Rate limit reached for requests",
            }
            assert "gen_ai.output.messages" not in values
            continue
        assert "status" not in span and "error.type" not in values
        outputs = json.loads(values["gen_ai.output.messages"])
        assert outputs == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": REPLY}],
                "finish_reason": "stop",
            }
        ]
        assert values["gen_ai.response.id"]
        if provider_name == "anthropic":
            assert values["gen_ai.response.model"] == model
            assert values["gen_ai.response.finish_reasons"] == ["end_turn"]
            # 12 fresh + 6 read from the cache + 2 written to it.
            assert values["gen_ai.usage.input_tokens"] == 20
            assert values["gen_ai.usage.cache_read.input_tokens"] == 6
            assert values["gen_ai.usage.output_tokens"] == 5
        else:
            assert values["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
            assert values["gen_ai.response.finish_reasons"] == ["stop"]
            responses_api = "responses" in path
            assert values["gen_ai.usage.input_tokens"] == (30 if responses_api else 21)
            assert values["gen_ai.usage.cache_read.input_tokens"] == (10 if responses_api else 8)
            assert values["gen_ai.usage.output_tokens"] == 5

    chat = attrs(by_record[records["/openai/chat/3"]["id"]])
    assert {key: chat[key] for key in chat if key.startswith("gen_ai.request.")} == {
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.stop_sequences": ["END"],
        "gen_ai.request.seed": 7,
        "gen_ai.request.frequency_penalty": 0.1,
        "gen_ai.request.presence_penalty": 0.3,
    }
    # The system message is part of the chat history: it stays among the input messages.
    assert json.loads(chat["gen_ai.input.messages"])[0] == {
        "role": "system",
        "parts": [{"type": "text", "content": "You are terse."}],
    }
    assert "gen_ai.system_instructions" not in chat
    responses = attrs(by_record[records["/openai/responses"]["id"]])
    assert responses["gen_ai.request.max_tokens"] == 50
    assert json.loads(responses["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Answer in one line."}
    ]
    messages = attrs(by_record[records["/anthropic/messages"]["id"]])
    assert messages["gen_ai.request.stop_sequences"] == ["END"]
    assert messages["gen_ai.request.max_tokens"] == 100
    assert json.loads(messages["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "You are terse."}
    ]


def test_with_a_user_token_spans_name_their_traffic_source(stand_in: StandInServer) -> None:
    accept_spans(stand_in)
    transport = HttpTransport(stand_in.url, "user-token", "0197548f-0e8e-7550-b283-f26fd98a9423")
    span = {"traceId": "1" * 32, "spanId": "2" * 16, "name": "chat m", "kind": 3}
    result = transport.send_spans([span], {"service.name": None})
    transport.close()
    assert result.sent == 1
    (hit,) = stand_in.hits
    assert hit.path == "/v1/traces"
    assert hit.headers["authorization"] == "Bearer user-token"
    assert hit.headers["x-traffic-source-id"] == "0197548f-0e8e-7550-b283-f26fd98a9423"
    # No service name: no resource attribute rather than an empty one.
    assert hit.body["resourceSpans"][0]["resource"] == {"attributes": []}


def test_spans_the_server_refuses_in_part_are_counted_not_retried(stand_in: StandInServer) -> None:
    def reply(hit: Any) -> Any:
        if hit.path == "/v1/traces":
            return (
                200,
                {"partialSuccess": {"rejectedSpans": "1", "errorMessage": "1 refused: bad model"}},
                {},
            )
        return None

    stand_in.reply = reply
    transport = HttpTransport(stand_in.url, "lhk_key")
    spans = [
        {"traceId": "1" * 32, "spanId": f"{n:016x}", "name": "chat m", "kind": 3}
        for n in range(1, 4)
    ]
    result = transport.send_spans(spans, {"service.name": "app"})
    transport.close()
    assert (result.sent, result.rejected, result.retry) == (2, 1, [])
    assert result.error == "1 refused: bad model"


def test_spans_are_retried_with_the_collectors_backoff_when_the_server_is_busy(
    provider: tuple[FakeProvider, str], stand_in: StandInServer, sdks: Sdks
) -> None:
    answers = iter([(503, {"code": 14, "message": "busy"}, {"Retry-After": "0"})])
    stand_in.reply = lambda hit: next(answers, (200, {}, {})) if hit.path == "/v1/traces" else None
    collector = instrumented(
        Collector(stand_in.url, api_key="lhk_key", flush_interval=0.05, backoff_base=0.01)
    )
    try:
        client, _ = sdks
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        drain(collector, 1)
    finally:
        collector.uninstrument_openai()
        collector.uninstrument_anthropic()
        collector.close()
    stats = collector.stats()
    assert (stats.sent, stats.retries, stats.failed) == (1, 1, 0)
    assert [hit.path for hit in stand_in.hits] == ["/v1/traces", "/v1/traces"]
    assert stand_in.hits[0].body == stand_in.hits[1].body


def test_outside_a_request_a_call_starts_a_trace_of_its_own(
    provider: tuple[FakeProvider, str], memory_llm: tuple[Collector, MemoryTransport], sdks: Sdks
) -> None:
    collector, transport = memory_llm
    client, _ = sdks
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    drain(collector, 2)
    first, second = transport.spans
    assert first["traceId"] != second["traceId"]
    for span in (first, second):
        assert "parentSpanId" not in span
        values = attrs(span)
        assert "http.route" not in values and "logharbor.record.id" not in values


def test_content_capture_off_sends_no_content(
    provider: tuple[FakeProvider, str], sdks: Sdks
) -> None:
    transport = MemoryTransport()
    collector = instrumented(
        Collector(transport=transport, flush_interval=0.05, capture_llm_content=False)
    )
    try:
        sync_openai, sync_anthropic = sdks
        sync_openai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        sync_openai.responses.create(
            model="gpt-4o-mini", input=USER_MESSAGE, instructions="Be terse."
        )
        stream = sync_openai.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == REPLY
        sync_anthropic.messages.create(
            model="claude-sonnet-4-5", max_tokens=10, system="Be terse.", messages=MESSAGES[1:]
        )
        drain(collector, 4)
    finally:
        collector.uninstrument_openai()
        collector.uninstrument_anthropic()
        collector.close()
    assert len(transport.spans) == 4
    for span in transport.spans:
        text = json.dumps(span)
        for content in ("Summarize", "terse", "Hello", "fake model"):
            assert content not in text
        values = attrs(span)
        assert not {
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.system_instructions",
        } & set(values)
        if not values["logharbor.llm.streamed"]:
            assert values["gen_ai.usage.output_tokens"] == 5


def test_errors_are_noted_and_raised_unchanged(
    provider: tuple[FakeProvider, str], memory_llm: tuple[Collector, MemoryTransport], sdks: Sdks
) -> None:
    collector, transport = memory_llm
    sync_openai, sync_anthropic = sdks
    with pytest.raises(openai.InternalServerError) as openai_error:
        sync_openai.responses.create(model="broken", input="x")
    assert openai_error.value.status_code == 500
    with pytest.raises(anthropic.RateLimitError) as anthropic_error:
        sync_anthropic.messages.create(model="rate-limited", max_tokens=5, messages=MESSAGES[1:])
    assert anthropic_error.value.body == {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "Number of request tokens has exceeded your per-minute rate limit",
        },
    }
    # A client timeout: the provider holds the answer back until the test ends.
    with pytest.raises(openai.APITimeoutError):
        sync_openai.chat.completions.create(model="stall", messages=MESSAGES, timeout=0.2)
    drain(collector, 3)
    by_model = {attrs(span)["gen_ai.request.model"]: span for span in transport.spans}
    expected = {
        "broken": "InternalServerError",
        "rate-limited": "RateLimitError",
        "stall": "APITimeoutError",
    }
    for model, error_type in expected.items():
        span = by_model[model]
        assert attrs(span)["error.type"] == error_type
        assert span["status"]["code"] == 2
        assert span["events"][0]["name"] == "exception"
        assert attrs(span["events"][0])["exception.type"] == error_type
    assert by_model["stall"]["status"]["message"] == "Request timed out."


def test_a_capture_bug_never_breaks_the_apps_call(
    provider: tuple[FakeProvider, str],
    memory_llm: tuple[Collector, MemoryTransport],
    monkeypatch: pytest.MonkeyPatch,
    sdks: Sdks,
) -> None:
    collector, transport = memory_llm
    sync_openai, sync_anthropic = sdks

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the collector")

    # On the app's path, before the call: the call is made as if not instrumented.
    with monkeypatch.context() as patch:
        patch.setattr(llm.tracing, "current_trace", broken)
        answer = sync_openai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert answer.choices[0].message.content == REPLY
    assert collector.stats().capture_errors == 1

    # While a stream is read: every chunk still reaches the app. The notes of a stream whose
    # reading fails as a whole are lost (counted); an event that cannot be read is skipped
    # (counted), the others still noted.
    with monkeypatch.context() as patch:
        patch.setattr(MessagesStreamNotes, "note", broken)
        stream = sync_anthropic.messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES[1:], stream=True
        )
        events = list(stream)
        texts = [e.delta.text for e in events if e.type == "content_block_delta"]  # type: ignore[union-attr]
        assert "".join(texts) == REPLY
    assert collector.stats().capture_errors == 2
    with monkeypatch.context() as patch:
        patch.setattr(llm_anthropic, "_usage_counts", broken)  # message_start, message_delta
        stream = sync_anthropic.messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES[1:], stream=True
        )
        assert [e.model_dump() for e in stream] == [e.model_dump() for e in events]
    assert collector.stats().capture_errors == 4

    # In the sender thread: that span is lost (counted), the app never knew.
    with monkeypatch.context() as patch:
        patch.setattr(ChatCompletions, "summarize", broken)
        answer = sync_openai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert answer.choices[0].message.content == REPLY
        drain(collector, 2)
    assert collector.stats().failed == 1
    # The anthropic streams' spans, with what could be noted.
    unread, partly_read = (attrs(span) for span in transport.spans)
    assert "gen_ai.output.messages" in unread and "gen_ai.response.id" not in unread
    assert json.loads(partly_read["gen_ai.output.messages"])[0]["parts"] == [
        {"type": "text", "content": REPLY}
    ]
    assert "gen_ai.usage.output_tokens" not in partly_read


def test_stream_chunks_reach_the_app_unchanged(
    provider: tuple[FakeProvider, str], memory_llm: tuple[Collector, MemoryTransport], sdks: Sdks
) -> None:
    collector, transport = memory_llm
    sync_openai, sync_anthropic = sdks

    def read_all() -> list[Any]:
        chat = sync_openai.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        with chat:
            chunks = [c.model_dump() for c in chat]
        events = [
            e.model_dump()
            for e in sync_anthropic.messages.create(
                model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES[1:], stream=True
            )
        ]
        return chunks + events

    captured = read_all()
    drain(collector, 2)
    collector.uninstrument_openai()
    collector.uninstrument_anthropic()
    assert read_all() == captured
    assert len(captured) == len(WORDS) + 3 + len(WORDS) + 5
    assert len(transport.spans) == 2


def test_a_streamed_chunk_reaches_the_app_before_the_next_is_sent(
    provider: tuple[FakeProvider, str], memory_llm: tuple[Collector, MemoryTransport], sdks: Sdks
) -> None:
    fake, _ = provider
    collector, transport = memory_llm
    sync_openai, _ = sdks
    seen: list[str] = []

    def read() -> None:
        stream = sync_openai.chat.completions.create(model="gated", messages=MESSAGES, stream=True)
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        # The provider holds everything after the first word until the gate opens: the app has
        # the first word while the provider is still waiting.
        wait_until(lambda: WORDS[0] in seen, "the first word to reach the app")
        assert fake.first_chunk_sent.is_set() and not fake.gate.is_set()
    finally:
        fake.gate.set()
        reader.join()
    assert "".join(seen) == REPLY
    drain(collector, 1)
    (span,) = transport.spans
    assert attrs(span)["logharbor.llm.time_to_first_token_ms"] > 0


def test_a_stream_broken_midway_is_noted_and_its_error_reaches_the_app(
    provider: tuple[FakeProvider, str], memory_llm: tuple[Collector, MemoryTransport], sdks: Sdks
) -> None:
    _, url = provider
    collector, transport = memory_llm
    sync_openai, _ = sdks
    seen: list[str] = []
    stream = sync_openai.chat.completions.create(model="cut", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")

    async def read_async() -> list[str]:
        got: list[str] = []
        async with async_openai(url) as client:
            stream = await client.chat.completions.create(
                model="cut", messages=MESSAGES, stream=True
            )
            with pytest.raises(openai.APIConnectionError):
                async for chunk in stream:
                    got.append(chunk.choices[0].delta.content or "")
        return got

    assert asyncio.run(read_async()) == seen == ["", WORDS[0]]
    drain(collector, 2)
    for span in transport.spans:
        values = attrs(span)
        assert values["error.type"] == "APIConnectionError"
        assert span["status"]["code"] == 2
        assert values["logharbor.llm.time_to_first_token_ms"] > 0
        assert json.loads(values["gen_ai.output.messages"]) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": WORDS[0]}],
                "finish_reason": "error",
            }
        ]


def test_a_stream_read_by_next_and_for_alike_is_freed_when_dropped(
    provider: tuple[FakeProvider, str], memory_llm: tuple[Collector, MemoryTransport], sdks: Sdks
) -> None:
    collector, transport = memory_llm
    sync_openai, _ = sdks
    stream = sync_openai.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    first = next(stream)
    rest = [chunk.choices[0].delta.content or "" for chunk in stream]
    assert first.choices[0].delta.content == ""
    assert "".join(rest) == REPLY
    # What notes the chunks holds the call, never the stream: dropping the stream frees it (and
    # with it the SDK's stream and connection) at once, with no wait for the garbage collector.
    gc.disable()
    try:
        dropped = weakref.ref(stream)
        del stream
        assert dropped() is None
    finally:
        gc.enable()
    drain(collector, 1)
    (span,) = transport.spans
    output = json.loads(attrs(span)["gen_ai.output.messages"])
    assert output[0]["parts"] == [{"type": "text", "content": REPLY}]
    assert output[0]["finish_reason"] == "stop"


def _reachable(root: object) -> dict[int, object]:
    """Every object reachable from ``root`` through data (not through classes, modules or
    functions, which reach everything)."""
    seen: dict[int, object] = {}
    todo = [root]
    while todo:
        value = todo.pop()
        if id(value) in seen or isinstance(value, (type, types.ModuleType, types.FunctionType)):
            continue
        seen[id(value)] = value
        todo.extend(gc.get_referents(value))
    return seen


@pytest.mark.parametrize("note_every", [1, 3, llm.NOTE_EVERY])
def test_a_queued_streamed_call_holds_none_of_the_sdks_chunks(
    provider: tuple[FakeProvider, str],
    sdks: Sdks,
    monkeypatch: pytest.MonkeyPatch,
    note_every: int,
) -> None:
    # Chunks are read in batches of ``note_every``: one at a time, split mid-answer, all at the
    # end (the default for a short answer) must all note the same.
    monkeypatch.setattr(llm, "NOTE_EVERY", note_every)
    sync_openai, sync_anthropic = sdks
    transport = MemoryTransport()
    # Nothing is sent until close: the calls wait in the queue as they wait for the sender.
    collector = instrumented(Collector(transport=transport, flush_interval=3600, batch_size=1000))
    try:
        chat = sync_openai.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks: list[Any] = list(chat)
        chunks += sync_anthropic.messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES[1:], stream=True
        )
        queued = list(collector._queue)
        assert len(queued) == 2
        held = {key: value for call in queued for key, value in _reachable(call).items()}
        # The chunks are dozens of objects the garbage collector tracks: kept until the sender
        # ran, they made its collections on the app's thread run several times as often. The
        # calls may share strings and numbers with them, no container.
        from_chunks = {key: value for chunk in chunks for key, value in _reachable(chunk).items()}
        shared = [value for key, value in from_chunks.items() if key in held]
        assert [value for value in shared if gc.is_tracked(value)] == []
        assert WORDS[1] in shared  # what the calls do hold: the text, as its pieces
    finally:
        collector.uninstrument_openai()
        collector.uninstrument_anthropic()
        collector.close()
    assert collector.stats().capture_errors == 0
    assert len(transport.spans) == 2
    for span in transport.spans:
        values = attrs(span)
        assert json.loads(values["gen_ai.output.messages"]) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": REPLY}],
                "finish_reason": "stop",
            }
        ]
        assert values["gen_ai.usage.output_tokens"] == 5
        assert values["gen_ai.usage.cache_read.input_tokens"] in (6, 8)
        assert values["logharbor.llm.time_to_first_token_ms"] > 0


def test_an_async_stream_left_midway_ends_its_span_and_leaves_nothing_pending(
    provider: tuple[FakeProvider, str], memory_llm: tuple[Collector, MemoryTransport]
) -> None:
    _, url = provider
    collector, transport = memory_llm

    async def read_one_word() -> str:
        async with async_openai(url) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
            async for chunk in stream:
                if chunk.choices[0].delta.content:
                    break
            word = chunk.choices[0].delta.content or ""
            # Dropped mid-way while the loop runs: the chunk generator is closed by the loop,
            # the call ends with what arrived.
            del stream
            return word

    assert asyncio.run(read_one_word()) == WORDS[0]
    drain(collector, 1)
    (span,) = transport.spans
    output = json.loads(attrs(span)["gen_ai.output.messages"])
    assert output[0]["parts"] == [{"type": "text", "content": WORDS[0]}]
    assert output[0]["finish_reason"] == "error"


def test_a_stream_closed_early_or_dropped_still_ends_its_span(
    provider: tuple[FakeProvider, str], memory_llm: tuple[Collector, MemoryTransport], sdks: Sdks
) -> None:
    collector, transport = memory_llm
    sync_openai, sync_anthropic = sdks
    stream = sync_openai.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    next(iter(stream))
    next(iter(stream))
    stream.close()
    with sync_anthropic.messages.stream(
        model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES[1:]
    ) as helper:
        next(iter(helper))
    drain(collector, 2)
    chat, messages = transport.spans
    assert json.loads(attrs(chat)["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": WORDS[0]}],
            "finish_reason": "error",
        }
    ]
    assert attrs(messages)["gen_ai.response.id"] == "msg_fake2"
    assert attrs(messages)["gen_ai.usage.cache_read.input_tokens"] == 6


def test_uninstrument_puts_the_sdks_back(
    provider: tuple[FakeProvider, str], memory_llm: tuple[Collector, MemoryTransport], sdks: Sdks
) -> None:
    collector, transport = memory_llm
    patched = Completions.create
    assert patched.__logharbor_original__ is not None  # type: ignore[attr-defined]
    collector.uninstrument_openai()
    collector.uninstrument_anthropic()
    assert Completions.create is patched.__logharbor_original__  # type: ignore[attr-defined]
    sync_openai, sync_anthropic = sdks
    sync_openai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    sync_anthropic.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=MESSAGES[1:])
    assert collector.flush(10)
    assert transport.spans == [] and collector.stats().accepted == 0


def _span_of(messages: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    call = llm.LlmCall(
        adapter=ChatCompletions(),
        kwargs={"model": "gpt-4o-mini", "messages": messages},
        parent=None,
        request=None,
        record_id=None,
        start_ns=1,
        streamed=False,
    )
    return llm.to_span(call, normalize_keys(keys), capture_content=True)


def test_content_is_masked_wherever_a_masked_key_appears_in_any_case() -> None:
    # Content is encoded first and masked only when its text names a key: a key in a tool
    # call's arguments, in another case, or only as part of a longer key, must still be caught.
    messages = [
        {"role": "user", "content": "Übersicht: TOKEN=abc&x=1"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "login", "arguments": '{"Access_Token": "s3cr3t"}'},
                }
            ],
        },
    ]
    values = attrs(_span_of(messages, ("token", "access_token")))
    inputs = json.loads(values["gen_ai.input.messages"])
    assert inputs[0]["parts"] == [{"type": "text", "content": "Übersicht: TOKEN=****&x=1"}]
    assert inputs[1]["parts"][0]["arguments"] == {"Access_Token": "****"}
    assert "s3cr3t" not in values["gen_ai.input.messages"]


def test_content_naming_no_masked_key_is_sent_as_the_app_gave_it() -> None:
    messages = [{"role": "user", "content": 'Say "hi" to Zoë {"a": 1}'}]
    values = attrs(_span_of(messages, ("password",)))
    assert json.loads(values["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": 'Say "hi" to Zoë {"a": 1}'}]}
    ]


def test_mentions_any_finds_keys_contained_in_others_and_in_non_ascii_text() -> None:
    keys = normalize_keys(["token", "access_token", "Client_Secret", "secret"])
    assert mentions_any("an ACCESS_TOKEN here", keys)
    assert mentions_any("Ünïcode CLIENT_secret", keys)
    assert mentions_any("just a secret", keys)
    assert not mentions_any("nothing to see: tokne, secre", keys)
    assert not mentions_any("anything", frozenset())
