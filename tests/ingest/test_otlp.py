"""OTLP/HTTP decoding: payloads from the real SDK encoders and OTLP JSON as the spec writes it."""

from __future__ import annotations

import base64
import contextlib
import copy
import gzip
import hashlib
import json
import logging
import random
import re
import tracemalloc
import uuid
import warnings
import zlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from logharbor.ingest import otlp
from logharbor.ingest.otlp import (
    MAX_ITEMS,
    OtlpBadRequest,
    OtlpError,
    OtlpTooLarge,
    OtlpUnsupported,
    decode_logs,
    decode_traces,
    encode_export_response,
    encode_status,
    encoding_for,
    frames_from_stacktrace,
    read_body,
)
from logharbor.ingest.records import Frame, HttpExchange

START_NS = 1_796_000_000_123_456_789
# 1,796,000,000 s is 20,787 days and 3,200 s after the epoch; sub-microseconds are truncated.
START_AT = datetime(2026, 11, 30, 0, 53, 20, 123456, tzinfo=UTC)
TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"


# --- payload builders ---------------------------------------------------------------------------


class Sdk:
    """The real SDK, exporting in memory; ``body()`` is what the proto-http exporter POSTs."""

    def __init__(self, service: str = "shop") -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests.otlp")

    def span(
        self,
        name: str,
        kind: SpanKind,
        attributes: Mapping[str, Any],
        *,
        duration_ns: int = 12_500_000,
        error: BaseException | None = None,
    ) -> None:
        span = self.tracer.start_span(
            name, kind=kind, attributes=dict(attributes), start_time=START_NS
        )
        if error is not None:
            span.record_exception(error)
        span.end(end_time=START_NS + duration_ns)

    def request(self) -> ExportTraceServiceRequest:
        request: ExportTraceServiceRequest = encode_spans(self.exporter.get_finished_spans())
        return request

    def body(self) -> bytes:
        data: bytes = self.request().SerializeToString()
        return data


def only_exchange(body: bytes, encoding: otlp.Encoding = "protobuf") -> HttpExchange:
    decoded = decode_traces(body, encoding)
    assert decoded.rejected == []
    assert len(decoded.exchanges) == 1
    return decoded.exchanges[0]


def as_json(message: Any) -> bytes:
    """A message as OTLP JSON: json_format's proto3 mapping with the ids rewritten in hex."""
    document = json_format.MessageToDict(message)
    for item in _items(document):
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in item:
                item[key] = bytes.fromhex(_b64_to_hex(item[key])).hex()
    return json.dumps(document).encode()


def _b64_to_hex(value: str) -> str:
    import base64

    return base64.b64decode(value).hex()


def _items(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource in document.get("resourceSpans", []) + document.get("resourceLogs", []):
        for scope in resource.get("scopeSpans", []) + resource.get("scopeLogs", []):
            yield from scope.get("spans", [])
            yield from scope.get("logRecords", [])


def raw_span(**fields: Any) -> Span:
    defaults: dict[str, Any] = {
        "trace_id": bytes.fromhex(TRACE_HEX),
        "span_id": bytes.fromhex(SPAN_HEX),
        "name": "GET /",
        "kind": Span.SPAN_KIND_SERVER,
        "start_time_unix_nano": START_NS,
        "end_time_unix_nano": START_NS + 1_000_000,
    }
    defaults.update(fields)
    return Span(**defaults)


def attrs(**values: Any) -> list[KeyValue]:
    """KeyValues from keyword arguments (``__`` stands for ``.``)."""
    result = []
    for key, value in values.items():
        if isinstance(value, bool):
            any_value = AnyValue(bool_value=value)
        elif isinstance(value, int):
            any_value = AnyValue(int_value=value)
        else:
            any_value = AnyValue(string_value=value)
        result.append(KeyValue(key=key.replace("__", "."), value=any_value))
    return result


def traces_body(*spans: Span, service: str | None = "shop") -> bytes:
    resource_attributes = attrs(service__name=service) if service else []
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={"attributes": resource_attributes},
                scope_spans=[ScopeSpans(spans=list(spans))],
            )
        ]
    )
    data: bytes = request.SerializeToString()
    return data


OLD_SERVER = {
    "http.scheme": "http",
    "http.host": "api.example.com:8803",
    "net.host.port": 8000,
    "http.flavor": "1.1",
    "http.target": "/items/3",  # the instrumentation's target has no query: http.url has it
    "http.url": "http://api.example.com:8803/items/3?a=1&a=2&b=",
    "http.method": "GET",
    "http.server_name": "api.example.com",
    "http.user_agent": "curl/8.5",
    "net.peer.ip": "127.0.0.1",
    "net.peer.port": 50000,
    "http.route": "/items/{item_id}",
    "http.request.header.x_request_id": ("r-1",),
    "http.response.header.content_type": ("application/json",),
    "http.response.header.set_cookie": ("a=1", "b=2"),
    "http.status_code": 200,
}

STABLE_SERVER = {
    "url.scheme": "http",
    "server.address": "127.0.0.1:8803",
    "server.port": 8803,
    "network.protocol.version": "1.1",
    "url.path": "/orders/42",
    "url.query": "expand=items&page=2",
    "http.request.method": "POST",
    "user_agent.original": "python-httpx/0.28",
    "client.address": "127.0.0.1",
    "client.port": 50000,
    "http.route": "/orders/{order_id}",
    "http.response.status_code": 201,
    "enduser.id": "user-7",
}


# --- read_body ----------------------------------------------------------------------------------


def test_identity_and_absent_encodings_return_the_body() -> None:
    assert read_body(b"abc", None, 10) == b"abc"
    assert read_body(b"abc", "", 10) == b"abc"
    assert read_body(b"abc", "identity", 3) == b"abc"


def test_gzip_is_inflated_whatever_the_case_or_alias() -> None:
    data = b"x" * 5000
    assert read_body(gzip.compress(data), "gzip", 5000) == data
    assert read_body(gzip.compress(data), " GZIP ", 5000) == data
    assert read_body(gzip.compress(data), "x-gzip", 5000) == data


def test_concatenated_gzip_members_are_one_body() -> None:
    assert read_body(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip", 10) == b"abcd"


def test_a_body_over_the_limit_is_refused_with_413() -> None:
    with pytest.raises(OtlpTooLarge) as caught:
        read_body(b"x" * 11, None, 10)
    assert caught.value.status_code == 413
    with pytest.raises(OtlpTooLarge):
        read_body(gzip.compress(b"x" * 11), "gzip", 10)


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    # 64 MiB of zeros deflate to about 64 KiB; inflating it whole would take 64 MiB of memory.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    bomb = b"".join(compressor.compress(block) for _ in range(64)) + compressor.flush()
    assert len(bomb) < 128 << 10
    tracemalloc.start()
    try:
        with pytest.raises(OtlpTooLarge, match="larger than 1048576 bytes"):
            read_body(bomb, "gzip", 1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_a_truncated_or_corrupt_gzip_is_a_bad_request() -> None:
    packed = gzip.compress(b"hello world" * 100)
    with pytest.raises(OtlpBadRequest, match="truncated"):
        read_body(packed[: len(packed) // 2], "gzip", 1 << 20)
    with pytest.raises(OtlpBadRequest, match="corrupt"):
        read_body(b"not gzip at all", "gzip", 1 << 20)
    with pytest.raises(OtlpBadRequest, match="corrupt"):
        read_body(packed + b"trailing junk", "gzip", 1 << 20)


def test_unknown_content_encodings_are_unsupported_media() -> None:
    with pytest.raises(OtlpUnsupported, match="'br'") as caught:
        read_body(b"abc", "br", 10)
    assert caught.value.status_code == 415
    with pytest.raises(OtlpUnsupported):
        read_body(b"abc", "gzip, deflate", 10)


# --- encoding_for -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        ("application/x-protobuf", "protobuf"),
        ("application/protobuf", "protobuf"),
        ("Application/X-Protobuf; proto=opentelemetry", "protobuf"),
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
    ],
)
def test_content_types_name_the_encoding(content_type: str, encoding: str) -> None:
    assert encoding_for(content_type) == encoding


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/grpc", "json"])
def test_other_content_types_are_415(content_type: str | None) -> None:
    with pytest.raises(OtlpUnsupported) as caught:
        encoding_for(content_type)
    assert caught.value.status_code == 415


# --- traces: HTTP spans -------------------------------------------------------------------------


def test_an_old_convention_server_span_becomes_an_exchange() -> None:
    sdk = Sdk()
    sdk.span("GET /items/{item_id}", SpanKind.SERVER, OLD_SERVER)
    span = sdk.exporter.get_finished_spans()[0]
    exchange = only_exchange(sdk.body())
    assert exchange.domain == "http://api.example.com:8803"  # Host header's port, not the socket's
    assert exchange.protocol == "HTTP"
    assert exchange.pathname == "/items/3"
    assert exchange.query == {"a": ["1", "2"], "b": ""}
    assert exchange.method == "GET"
    assert exchange.status == 200
    assert exchange.elapsed_ms == 12.5
    assert exchange.route == "/items/{item_id}"
    assert exchange.started_at == START_AT
    assert exchange.request_headers == {"x-request-id": "r-1", "user-agent": "curl/8.5"}
    assert exchange.response_headers == {
        "content-type": "application/json",
        "set-cookie": "a=1, b=2",
    }
    assert exchange.trace_id == f"{span.context.trace_id:032x}"
    assert exchange.span_id == f"{span.context.span_id:016x}"
    assert exchange.request_body is None and exchange.response_body is None
    assert exchange.user_id is None
    assert exchange.exception is None


def test_a_stable_convention_server_span_becomes_an_exchange() -> None:
    sdk = Sdk()
    sdk.span("POST /orders/{order_id}", SpanKind.SERVER, STABLE_SERVER)
    exchange = only_exchange(sdk.body())
    # The Python instrumentation puts the port into server.address as well as server.port.
    assert exchange.domain == "http://127.0.0.1:8803"
    assert exchange.pathname == "/orders/42"
    assert exchange.query == {"expand": "items", "page": "2"}
    assert exchange.method == "POST"
    assert exchange.status == 201
    assert exchange.route == "/orders/{order_id}"
    assert exchange.request_headers == {"user-agent": "python-httpx/0.28"}
    assert exchange.response_headers is None
    assert exchange.user_id == "user-7"


def test_both_generations_at_once_read_the_stable_names_first() -> None:
    sdk = Sdk()
    sdk.span("GET", SpanKind.SERVER, {**OLD_SERVER, **STABLE_SERVER})  # OTEL_..._OPT_IN=http/dup
    exchange = only_exchange(sdk.body())
    assert (exchange.method, exchange.status, exchange.pathname) == ("POST", 201, "/orders/42")


def test_a_header_captured_with_its_real_name_and_an_explicit_user_agent_header() -> None:
    sdk = Sdk()
    sdk.span(
        "GET",
        SpanKind.SERVER,
        {
            **STABLE_SERVER,
            "http.request.header.user-agent": ("from-header",),
            "http.request.header.Accept": ("a", "b"),
        },
    )
    exchange = only_exchange(sdk.body())
    assert exchange.request_headers == {"user-agent": "from-header", "accept": "a, b"}


def test_stable_client_spans_take_their_origin_from_url_full() -> None:
    sdk = Sdk()
    sdk.span(
        "GET",
        SpanKind.CLIENT,
        {
            "http.request.method": "get",
            "url.full": "https://user:pw@payments.example.com/v1/charges?limit=3#frag",
            "server.address": "payments.example.com",
            "server.port": 443,
            "http.response.status_code": 502,
        },
    )
    exchange = only_exchange(sdk.body())
    assert exchange.domain == "https://payments.example.com"
    assert exchange.protocol == "HTTPS"
    assert exchange.pathname == "/v1/charges"
    assert exchange.query == {"limit": "3"}
    assert exchange.method == "GET"
    assert exchange.status == 502
    assert exchange.route is None


def test_old_client_spans_use_http_url_or_the_peer_name() -> None:
    sdk = Sdk()
    sdk.span(
        "POST",
        SpanKind.CLIENT,
        {
            "http.method": "POST",
            "http.url": "http://inventory:9000/reserve",
            "http.status_code": 204,
        },
    )
    sdk.span(
        "GET",
        SpanKind.CLIENT,
        {
            "http.method": "GET",
            "net.peer.name": "cache.internal",
            "net.peer.port": 8080,
            "http.target": "/keys/a",
            "http.status_code": 404,
        },
    )
    first, second = decode_traces(sdk.body(), "protobuf").exchanges
    assert (first.domain, first.pathname, first.status) == (
        "http://inventory:9000",
        "/reserve",
        204,
    )
    assert (second.domain, second.pathname) == ("https://cache.internal:8080", "/keys/a")


def test_ipv6_hosts_keep_their_brackets_and_default_ports_go() -> None:
    sdk = Sdk()
    sdk.span(
        "GET",
        SpanKind.SERVER,
        {
            "http.request.method": "GET",
            "url.scheme": "https",
            "server.address": "[::1]:443",
            "url.path": "/",
            "http.response.status_code": 200,
        },
    )
    sdk.span(
        "GET",
        SpanKind.SERVER,
        {
            "http.request.method": "GET",
            "url.scheme": "http",
            "server.address": "::1",
            "server.port": 8080,
            "url.path": "",
            "http.response.status_code": 200,
        },
    )
    sdk.span(
        "GET",
        SpanKind.SERVER,
        {"http.method": "GET", "http.scheme": "wss", "net.host.name": "Chat.Example.com",
         "net.host.port": 443, "http.status_code": 101},
    )  # fmt: skip
    sdk.span(
        "GET",
        SpanKind.SERVER,
        {"http.method": "GET", "http.server_name": "legacy", "net.host.port": 80,
         "http.status_code": 200},
    )  # fmt: skip
    first, second, socket, unnamed = decode_traces(sdk.body(), "protobuf").exchanges
    assert first.domain == "https://[::1]"
    assert (second.domain, second.pathname) == ("http://[::1]:8080", "/")
    assert socket.domain == "https://chat.example.com"
    assert unnamed.domain == "http://legacy"  # no scheme: port 80 says http


def test_without_any_host_the_service_name_stands_in() -> None:
    sdk = Sdk(service="unknown_service:python")
    sdk.span("GET", SpanKind.SERVER, {"http.method": "GET", "http.status_code": 200})
    exchange = only_exchange(sdk.body())
    assert exchange.domain == "https://unknown-service-python"
    assert exchange.pathname == "/"
    assert exchange.query is None


def test_client_id_is_a_uuid_derived_from_the_ids_so_a_retry_is_stored_once() -> None:
    body = traces_body(raw_span(attributes=attrs(http__method="GET", http__status_code=200)))
    first = only_exchange(body)
    again = only_exchange(body)
    assert first.client_id == again.client_id
    assert first.client_id is not None
    parsed = uuid.UUID(first.client_id)
    assert str(parsed) == first.client_id
    assert parsed.variant == uuid.RFC_4122
    assert parsed.version == 7
    # Time-ordered like every LogHarbor id: the span's start in milliseconds leads...
    assert parsed.int >> 80 == START_NS // 1_000_000
    # ...and the rest comes from the trace and span ids.
    digest = hashlib.sha256(bytes.fromhex(TRACE_HEX + SPAN_HEX)).hexdigest()
    assert first.client_id.replace("-", "")[13:16] == digest[:3]
    assert first.client_id.replace("-", "")[20:] == digest[7:19]
    other = only_exchange(
        traces_body(
            raw_span(
                span_id=bytes.fromhex("00000000000000aa"),
                attributes=attrs(http__method="GET", http__status_code=200),
            )
        )
    )
    assert other.client_id != first.client_id


def test_internal_spans_with_http_attributes_are_other_spans() -> None:
    sdk = Sdk()
    # What the ASGI instrumentation sends alongside each SERVER span.
    sdk.span(
        "GET /x http send",
        SpanKind.INTERNAL,
        {"asgi.event.type": "http.response.start", "http.status_code": 200, "http.method": "GET"},
    )
    sdk.span("GET /x http receive", SpanKind.INTERNAL, {"asgi.event.type": "http.request"})
    sdk.span("GET /x", SpanKind.SERVER, OLD_SERVER)
    sdk.span("work", SpanKind.SERVER, {"messaging.system": "kafka"})  # SERVER but not HTTP
    sdk.span("publish", SpanKind.PRODUCER, {"http.method": "GET", "http.status_code": 200})
    decoded = decode_traces(sdk.body(), "protobuf")
    assert len(decoded.exchanges) == 1
    assert len(decoded.spans) == 4
    assert decoded.generations == []
    assert decoded.total == 5
    assert sorted(span.kind for span in decoded.spans) == [
        "INTERNAL",
        "INTERNAL",
        "PRODUCER",
        "SERVER",
    ]
    assert decoded.rejected == []


def test_genai_spans_are_llm_calls_in_either_convention() -> None:
    sdk = Sdk()
    sdk.span(
        "chat gpt-4o-mini",
        SpanKind.CLIENT,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 12,
        },
    )
    sdk.span(
        "ChatCompletion",
        SpanKind.INTERNAL,
        {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini"},
    )
    sdk.span("plain", SpanKind.INTERNAL, {"gen_ai": "not a namespace", "llmx.y": 1})
    decoded = decode_traces(sdk.body(), "protobuf")
    assert (len(decoded.generations), len(decoded.spans), decoded.total) == (2, 1, 3)
    assert decoded.exchanges == []
    semconv, openinference = decoded.generations
    assert (semconv.request_model, semconv.input_tokens) == ("gpt-4o-mini", 12)
    assert (openinference.request_model, openinference.operation) == ("gpt-4o-mini", "chat")
    assert decoded.spans[0].attributes == {"gen_ai": "not a namespace", "llmx.y": 1}


def test_http_spans_that_cannot_be_records_are_refused_one_by_one() -> None:
    sdk = Sdk()
    sdk.span("ok", SpanKind.SERVER, OLD_SERVER)
    sdk.span(
        "other",
        SpanKind.SERVER,
        {
            "http.request.method": "_OTHER",
            "http.request.method_original": "PROPFIND",
            "http.response.status_code": 207,
        },
    )
    sdk.span("weird", SpanKind.SERVER, {"http.method": "BREW", "http.status_code": 418})
    sdk.span(
        "no answer",
        SpanKind.CLIENT,
        {
            "http.request.method": "GET",
            "url.full": "https://down.example.com/",
            "error.type": "ConnectTimeout",
        },
    )
    sdk.span("no status", SpanKind.SERVER, {"http.method": "GET"})
    sdk.span("bad status", SpanKind.SERVER, {"http.method": "GET", "http.status_code": 42})
    sdk.span("time travel", SpanKind.SERVER, OLD_SERVER, duration_ns=-5)
    decoded = decode_traces(sdk.body(), "protobuf")
    assert len(decoded.exchanges) == 1
    assert len(decoded.rejected) == 6
    reasons = "\n".join(decoded.rejected)
    assert "'PROPFIND' is not one of GET" in reasons
    assert "'BREW' is not one of" in reasons
    assert "no HTTP status code (error.type 'ConnectTimeout')" in reasons
    assert "('no status'): no HTTP status code" in reasons
    assert "HTTP status code 42 is outside 100-599" in reasons
    assert "ends before it starts" in reasons


def test_a_server_span_that_failed_without_a_status_answered_500() -> None:
    sdk = Sdk()
    sdk.span(
        "GET /boom",
        SpanKind.SERVER,
        {"http.method": "GET", "http.target": "/boom"},
        error=ValueError("kaputt"),
    )
    exchange = only_exchange(sdk.body())
    assert exchange.status == 500
    assert exchange.exception is not None
    assert exchange.exception.type == "ValueError"


def test_status_codes_sent_as_strings_are_read() -> None:
    body = traces_body(raw_span(attributes=attrs(http__method="GET", http__status_code="503")))
    assert only_exchange(body).status == 503


# --- exceptions ---------------------------------------------------------------------------------


def _raise_nested() -> None:
    def inner() -> None:
        raise KeyError("sku")

    inner()


def test_a_recorded_python_exception_becomes_exception_info_with_frames() -> None:
    sdk = Sdk()
    try:
        _raise_nested()
    except KeyError as exc:
        error = exc
    sdk.span("GET /x", SpanKind.SERVER, OLD_SERVER | {"http.status_code": 500}, error=error)
    exception = only_exchange(sdk.body()).exception
    assert exception is not None
    assert exception.type == "KeyError"
    assert exception.message == "'sku'"
    assert exception.stacktrace is not None and "Traceback" in exception.stacktrace
    assert [frame.function for frame in exception.frames] == [
        "test_a_recorded_python_exception_becomes_exception_info_with_frames",
        "_raise_nested",
        "inner",
    ]
    assert exception.frames[-1].file == __file__
    assert all(isinstance(frame.line, int) for frame in exception.frames)


def test_the_last_exception_event_wins() -> None:
    sdk = Sdk()
    span = sdk.tracer.start_span("GET", kind=SpanKind.SERVER, attributes=OLD_SERVER)
    span.record_exception(ValueError("handled"))
    span.record_exception(RuntimeError("fatal"))
    span.add_event("exception", {"exception.escaped": True})  # no type, no message: not one
    span.end()
    exception = only_exchange(sdk.body()).exception
    assert exception is not None
    assert (exception.type, exception.message) == ("RuntimeError", "fatal")


def test_chained_python_tracebacks_give_the_frames_of_the_last_one() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/app/db.py", line 10, in fetch\n'
        "    raise IOError()\n"
        "OSError\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n"
        '  File "/app/main.py", line 3, in handler\n'
        "    fetch()\n"
        '  File "/app/main.py", line 7, in fetch_or_fail\n'
        "    raise RuntimeError\n"
        "RuntimeError\n"
    )
    assert frames_from_stacktrace(text) == (
        Frame(file="/app/main.py", line=3, function="handler"),
        Frame(file="/app/main.py", line=7, function="fetch_or_fail"),
    )


def test_java_stack_traces_are_parsed_innermost_last_without_causes() -> None:
    text = (
        "java.lang.IllegalStateException: boom\n"
        "\tat com.shop.Orders.place(Orders.java:42)\n"
        "\tat com.shop.Api.handle(Api.java:7)\n"
        "\tat java.base/java.lang.Thread.run(Thread.java:833)\n"
        "\tat jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)\n"
        "Caused by: java.io.IOException: disk\n"
        "\tat com.shop.Disk.write(Disk.java:3)\n"
        "\t... 4 more\n"
    )
    assert frames_from_stacktrace(text) == (
        Frame(
            file="Native Method",
            line=None,
            function="jdk.internal.reflect.NativeMethodAccessorImpl.invoke0",
        ),
        Frame(file="Thread.java", line=833, function="java.lang.Thread.run"),
        Frame(file="Api.java", line=7, function="com.shop.Api.handle"),
        Frame(file="Orders.java", line=42, function="com.shop.Orders.place"),
    )


def test_node_stack_traces_are_parsed_innermost_last() -> None:
    text = (
        "TypeError: Cannot read properties of undefined (reading 'id')\n"
        "    at getUser (/app/src/users.js:12:15)\n"
        "    at async Router.handle (/app/node_modules/express/lib/router.js:280:9)\n"
        "    at /app/src/index.js:5:3\n"
        "    at new Promise (<anonymous>)\n"
    )
    assert frames_from_stacktrace(text) == (
        Frame(file="<anonymous>", line=None, function="new Promise"),
        Frame(file="/app/src/index.js", line=5, function="<anonymous>"),
        Frame(
            file="/app/node_modules/express/lib/router.js", line=280, function="async Router.handle"
        ),
        Frame(file="/app/src/users.js", line=12, function="getUser"),
    )


def test_exception_caps_keep_the_innermost_frames_and_the_stack_tail() -> None:
    frames = "".join(f'  File "/app/f{i}.py", line {i}, in f{i}\n    pass\n' for i in range(400))
    stacktrace = "Traceback (most recent call last):\n" + frames + "ValueError: x\n"
    span = raw_span(
        attributes=attrs(http__method="GET", http__status_code=500),
        events=[
            Span.Event(
                name="exception",
                time_unix_nano=START_NS,
                attributes=attrs(
                    exception__type="ValueError",
                    exception__message="m" * 5000,
                    exception__stacktrace=stacktrace,
                ),
            )
        ],
    )
    exception = only_exchange(traces_body(span)).exception
    assert exception is not None
    assert len(exception.frames) == otlp.MAX_FRAMES
    assert exception.frames[-1] == Frame(file="/app/f399.py", line=399, function="f399")
    assert exception.frames[0].function == "f350"
    assert len(exception.message) == otlp.MAX_EXCEPTION_MESSAGE_CHARS
    assert exception.stacktrace is not None
    assert len(exception.stacktrace.encode()) <= otlp.MAX_STACKTRACE_BYTES
    assert stacktrace.endswith(exception.stacktrace)


def test_hostile_stack_traces_parse_quickly_to_nothing() -> None:
    text = "at " + "a (" * 50_000 + "\n" + "  at x" * 10_000
    assert frames_from_stacktrace(text) == ()


# --- traces: OTLP JSON ---------------------------------------------------------------------------


SPEC_JSON: dict[str, Any] = {
    "resourceSpans": [
        {
            "resource": {
                "attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]
            },
            "scopeSpans": [
                {
                    "scope": {"name": "my.library", "version": "1.0.0", "attributes": []},
                    "spans": [
                        {
                            "traceId": TRACE_HEX.upper(),
                            "spanId": SPAN_HEX,
                            "parentSpanId": "",
                            "name": "GET /items",
                            "startTimeUnixNano": str(START_NS),
                            "endTimeUnixNano": str(START_NS + 2_000_000),
                            "kind": 2,
                            "attributes": [
                                {"key": "http.request.method", "value": {"stringValue": "GET"}},
                                {"key": "http.response.status_code", "value": {"intValue": "200"}},
                                {"key": "url.path", "value": {"stringValue": "/items"}},
                                {"key": "url.scheme", "value": {"stringValue": "https"}},
                                {"key": "server.address", "value": {"stringValue": "shop.test"}},
                                {"key": "server.port", "value": {"intValue": 8443}},
                                {
                                    "key": "http.request.header.accept",
                                    "value": {"arrayValue": {"values": [{"stringValue": "*/*"}]}},
                                },
                            ],
                            "links": [{"traceId": TRACE_HEX, "spanId": SPAN_HEX}],
                            "status": {"code": 0},
                            "someFutureField": {"nested": True},
                        }
                    ],
                }
            ],
        }
    ]
}


def test_spec_json_is_decoded_with_hex_ids_string_integers_and_unknown_fields() -> None:
    exchange = only_exchange(json.dumps(SPEC_JSON).encode(), "json")
    assert exchange.trace_id == TRACE_HEX
    assert exchange.span_id == SPAN_HEX
    assert exchange.domain == "https://shop.test:8443"
    assert exchange.pathname == "/items"
    assert exchange.status == 200
    assert exchange.elapsed_ms == 2.0
    assert exchange.request_headers == {"accept": "*/*"}


def test_json_and_protobuf_of_the_same_spans_decode_alike() -> None:
    sdk = Sdk()
    sdk.span("GET", SpanKind.SERVER, OLD_SERVER, error=ValueError("v"))
    sdk.span("POST", SpanKind.CLIENT, STABLE_SERVER)
    sdk.span("chat", SpanKind.CLIENT, {"gen_ai.system": "openai"})
    request = sdk.request()
    from_protobuf = decode_traces(request.SerializeToString(), "protobuf")
    from_json = decode_traces(as_json(request), "json")
    assert from_json == from_protobuf
    assert len(from_json.exchanges) == 2


def test_proto_field_names_are_accepted_in_json_too() -> None:
    document = json.loads(json.dumps(SPEC_JSON).replace("traceId", "trace_id"))
    document["resource_spans"] = document.pop("resourceSpans")
    assert only_exchange(json.dumps(document).encode(), "json").trace_id == TRACE_HEX


@pytest.mark.parametrize(
    "body",
    [
        b"",  # not JSON (an empty protobuf message is fine, an empty JSON body is not)
        b"[]",
        b'"resourceSpans"',
        b'{"resourceSpans": "nope"}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": "server?"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 7}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "abc"}]}]}]}',
        b"\xff\xfe{",
        b"[" * 100_000,
    ],
)
def test_json_that_is_not_otlp_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(OtlpBadRequest) as caught:
        decode_traces(body, "json")
    assert caught.value.status_code == 400
    assert str(caught.value)


def _spec_json_with(**span_fields: Any) -> bytes:
    document = copy.deepcopy(SPEC_JSON)
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(span_fields)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"traceId": TRACE_HEX[:30]}, "invalid trace id"),
        ({"traceId": "0" * 32}, "invalid trace id"),
        ({"traceId": ""}, "invalid trace id"),
        ({"spanId": SPAN_HEX + "00"}, "invalid span id"),
        ({"spanId": "0" * 16}, "invalid span id"),
        ({"parentSpanId": "abcd"}, "invalid parent span id"),
    ],
)
def test_malformed_ids_refuse_the_whole_request(fields: dict[str, str], reason: str) -> None:
    document = copy.deepcopy(SPEC_JSON)
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.insert(0, copy.deepcopy(spans[0]))  # a valid span before the bad one is not kept
    spans[1].update(fields)
    with pytest.raises(OtlpBadRequest, match=reason):
        decode_traces(json.dumps(document).encode(), "json")
    proto_fields = {
        {"traceId": "trace_id", "spanId": "span_id", "parentSpanId": "parent_span_id"}[
            k
        ]: bytes.fromhex(v)
        for k, v in fields.items()
    }
    with pytest.raises(OtlpBadRequest, match=reason):
        decode_traces(traces_body(raw_span(), raw_span(**proto_fields)), "protobuf")


# --- traces: protobuf damage and limits ---------------------------------------------------------


def test_truncated_protobuf_is_a_bad_request() -> None:
    sdk = Sdk()
    sdk.span("GET", SpanKind.SERVER, OLD_SERVER)
    body = sdk.body()
    with pytest.raises(OtlpBadRequest, match="not a valid OTLP protobuf"):
        decode_traces(body[:-7], "protobuf")
    with pytest.raises(OtlpBadRequest):
        decode_logs(b"\x0a\xff\xff\xff\xff\x0f", "protobuf")


def test_an_empty_request_is_valid() -> None:
    decoded = decode_traces(b"", "protobuf")
    assert (decoded.exchanges, decoded.rejected, decoded.total) == ([], [], 0)
    assert decode_traces(b"{}", "json").total == 0
    assert decode_logs(b"", "protobuf").total == 0


def _many_spans(count: int) -> bytes:
    spans = [
        raw_span(
            span_id=(index + 1).to_bytes(8, "big"),
            attributes=attrs(http__method="GET", http__target=f"/n/{index}", http__status_code=200),
        )
        for index in range(count)
    ]
    return traces_body(*spans)


def test_the_collectors_default_batch_of_8192_spans_is_accepted() -> None:
    assert MAX_ITEMS == 8192
    decoded = decode_traces(_many_spans(8192), "protobuf")
    assert decoded.total == 8192
    assert len(decoded.exchanges) == 8192
    assert len({exchange.client_id for exchange in decoded.exchanges}) == 8192


def test_10000_spans_are_refused_whole() -> None:
    with pytest.raises(OtlpTooLarge, match="10000 spans") as caught:
        decode_traces(_many_spans(10_000), "protobuf")
    assert caught.value.status_code == 413


# --- logs ---------------------------------------------------------------------------------------


class SdkLogs:
    def __init__(self) -> None:
        self.exporter = InMemoryLogRecordExporter()
        self.provider = LoggerProvider(resource=Resource.create({"service.name": "shop"}))
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))
        self.logger = logging.getLogger("shop.orders.test_otlp")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        with warnings.catch_warnings():
            # Deprecated in favour of opentelemetry-instrumentation-logging's, which is not
            # installed here; the records it makes are what matters, and they are the same.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.handler = LoggingHandler(logger_provider=self.provider)
        self.logger.addHandler(self.handler)

    def close(self) -> None:
        self.logger.removeHandler(self.handler)

    def request(self) -> ExportLogsServiceRequest:
        request: ExportLogsServiceRequest = encode_logs(self.exporter.get_finished_logs())
        return request


@pytest.fixture
def sdk_logs() -> Iterator[SdkLogs]:
    logs = SdkLogs()
    yield logs
    logs.close()


def test_python_logging_records_become_log_lines(sdk_logs: SdkLogs) -> None:
    sdk = Sdk()
    with sdk.tracer.start_as_current_span("request") as span:
        sdk_logs.logger.debug("cache miss")
        sdk_logs.logger.info(
            "order %s placed", "A-1", extra={"user.id": "u-1", "http.route": "/orders"}
        )
        sdk_logs.logger.warning("low stock")
        sdk_logs.logger.error("payment declined")
        sdk_logs.logger.critical("database gone")
    lines = decode_logs(sdk_logs.request().SerializeToString(), "protobuf").lines
    assert [line.level for line in lines] == ["INFO", "INFO", "WARNING", "FATAL", "FATAL"]
    assert [line.message for line in lines][:2] == ["cache miss", "order A-1 placed"]
    assert lines[0].route == "shop.orders.test_otlp"  # the logger's name
    assert lines[1].route == "/orders"
    assert lines[1].user_id == "u-1"
    assert lines[1].attributes["service.name"] == "shop"
    assert lines[1].attributes["code.function.name"] == (
        "test_python_logging_records_become_log_lines"
    )
    assert isinstance(lines[1].attributes["code.line.number"], int)
    context = span.get_span_context()
    assert lines[0].trace_id == f"{context.trace_id:032x}"
    assert lines[0].span_id == f"{context.span_id:016x}"
    assert lines[0].time.tzinfo is not None


def test_logged_exceptions_carry_exception_info(sdk_logs: SdkLogs) -> None:
    try:
        _raise_nested()
    except KeyError:
        sdk_logs.logger.exception("lookup failed")
    (line,) = decode_logs(sdk_logs.request().SerializeToString(), "protobuf").lines
    assert line.level == "FATAL"
    assert line.trace_id is None and line.span_id is None  # logged outside any span
    assert line.exception is not None
    assert line.exception.type == "KeyError"
    assert [frame.function for frame in line.exception.frames][-2:] == ["_raise_nested", "inner"]


def _log_body(*records: LogRecord, scope: str = "app", service: str | None = "shop") -> bytes:
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource={"attributes": attrs(service__name=service) if service else []},
                scope_logs=[ScopeLogs(scope={"name": scope}, log_records=list(records))],
            )
        ]
    )
    data: bytes = request.SerializeToString()
    return data


@pytest.mark.parametrize(
    ("number", "text", "level"),
    [
        (1, "", "INFO"),  # TRACE
        (5, "", "INFO"),  # DEBUG
        (9, "", "INFO"),
        (12, "", "INFO"),
        (13, "", "WARNING"),
        (16, "", "WARNING"),
        (17, "", "FATAL"),  # ERROR
        (21, "", "FATAL"),  # FATAL
        (24, "", "FATAL"),
        (13, "ERROR", "WARNING"),  # the number wins over the text
        (0, "warn", "WARNING"),
        (0, "Warning", "WARNING"),
        (0, "error", "FATAL"),
        (0, "CRITICAL", "FATAL"),
        (0, "ERROR2", "FATAL"),
        (0, "debug", "INFO"),
        (0, "", "INFO"),
        (99, "error", "FATAL"),  # out of range: the text decides
    ],
)
def test_severity_maps_to_three_levels(number: int, text: str, level: str) -> None:
    body = _log_body(LogRecord(time_unix_nano=START_NS, severity_number=number, severity_text=text))
    assert decode_logs(body, "protobuf").lines[0].level == level


def test_log_bodies_times_routes_and_rejections() -> None:
    structured = AnyValue(
        kvlist_value={
            "values": [
                KeyValue(key="sku", value=AnyValue(string_value="A-1")),
                KeyValue(key="raw", value=AnyValue(bytes_value=b"\x01\xff")),
                KeyValue(key="ratio", value=AnyValue(double_value=float("nan"))),
                KeyValue(
                    key="tags",
                    value=AnyValue(
                        array_value={"values": [AnyValue(int_value=1), AnyValue(bool_value=True)]}
                    ),
                ),
            ]
        }
    )
    body = _log_body(
        LogRecord(time_unix_nano=START_NS, body=structured),
        LogRecord(observed_time_unix_nano=START_NS + 1000, body=AnyValue(string_value="late")),
        LogRecord(body=AnyValue(string_value="timeless")),
        LogRecord(
            time_unix_nano=START_NS,
            event_name="shop.order.placed",
            attributes=attrs(http__request__method="post", http__response__status_code=201),
        ),
        # A GenAI event repeats its span's content: the span is the LLM call, this is no line.
        LogRecord(time_unix_nano=START_NS, event_name="gen_ai.client.inference.operation.details"),
        scope="",
    )
    decoded = decode_logs(body, "protobuf")
    assert decoded.total == 5
    assert decoded.genai_events == 1
    assert decoded.rejected == ["log record 2: neither time nor observed time is set"]
    first, second, event = decoded.lines
    assert json.loads(first.message) == {
        "sku": "A-1",
        "raw": "01ff",
        "ratio": "NaN",
        "tags": [1, True],
    }
    assert first.route == "shop"  # no http.route, no scope name: the service's name
    assert second.time == START_AT.replace(microsecond=123457)
    assert second.message == "late"
    assert event.message == "shop.order.placed"
    assert (event.method, event.status) == ("POST", 201)
    no_service = decode_logs(
        _log_body(LogRecord(time_unix_nano=1), scope="", service=None), "protobuf"
    )
    assert no_service.lines[0].route == "/"
    assert "service.name" not in no_service.lines[0].attributes


def test_log_ids_may_be_empty_or_zero_but_not_the_wrong_length() -> None:
    ok = _log_body(
        LogRecord(time_unix_nano=START_NS, trace_id=bytes(16), span_id=bytes(8)),
        LogRecord(time_unix_nano=START_NS, trace_id=bytes.fromhex(TRACE_HEX)),
    )
    first, second = decode_logs(ok, "protobuf").lines
    assert (first.trace_id, first.span_id) == (None, None)
    assert (second.trace_id, second.span_id) == (TRACE_HEX, None)
    bad = _log_body(LogRecord(time_unix_nano=START_NS, trace_id=b"\x01" * 8))
    with pytest.raises(OtlpBadRequest, match="invalid trace id"):
        decode_logs(bad, "protobuf")


def test_spec_log_json_is_decoded() -> None:
    document = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                },
                "scopeLogs": [
                    {
                        "scope": {"name": "my.library"},
                        "logRecords": [
                            {
                                "timeUnixNano": str(START_NS),
                                "observedTimeUnixNano": str(START_NS),
                                "severityNumber": 10,
                                "severityText": "Information",
                                "traceId": TRACE_HEX,
                                "spanId": SPAN_HEX,
                                "body": {"stringValue": "Example log record"},
                                "attributes": [
                                    {
                                        "key": "string.attribute",
                                        "value": {"stringValue": "some string"},
                                    },
                                    {"key": "boolean.attribute", "value": {"boolValue": True}},
                                    {"key": "int.attribute", "value": {"intValue": "10"}},
                                    {"key": "double.attribute", "value": {"doubleValue": 637.704}},
                                    {
                                        "key": "map.attribute",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {
                                                        "key": "some.map.key",
                                                        "value": {"stringValue": "some value"},
                                                    }
                                                ]
                                            }
                                        },
                                    },
                                ],
                                "futureField": 1,
                            }
                        ],
                    }
                ],
            }
        ]
    }
    (line,) = decode_logs(json.dumps(document).encode(), "json").lines
    assert line.level == "INFO"
    assert line.message == "Example log record"
    assert line.route == "my.library"
    assert (line.trace_id, line.span_id) == (TRACE_HEX, SPAN_HEX)
    assert line.attributes == {
        "string.attribute": "some string",
        "boolean.attribute": True,
        "int.attribute": 10,
        "double.attribute": 637.704,
        "map.attribute": {"some.map.key": "some value"},
        "service.name": "svc",
    }


def test_json_and_protobuf_of_the_same_logs_decode_alike(sdk_logs: SdkLogs) -> None:
    sdk = Sdk()
    with sdk.tracer.start_as_current_span("request"):
        sdk_logs.logger.warning("careful", extra={"http.route": "/x", "n": 3})
    try:
        _raise_nested()
    except KeyError:
        sdk_logs.logger.exception("failed")
    request = sdk_logs.request()
    from_json = decode_logs(as_json(request), "json")
    assert from_json == decode_logs(request.SerializeToString(), "protobuf")
    assert len(from_json.lines) == 2


def test_too_many_log_records_are_refused() -> None:
    records = [LogRecord(time_unix_nano=START_NS)] * (MAX_ITEMS + 1)
    with pytest.raises(OtlpTooLarge, match="8193 log records"):
        decode_logs(_log_body(*records), "protobuf")
    assert decode_logs(_log_body(*records[:MAX_ITEMS]), "protobuf").total == MAX_ITEMS


# --- answers ------------------------------------------------------------------------------------


def test_a_full_success_is_an_empty_message() -> None:
    assert encode_export_response("traces", "protobuf", 0, "") == b""
    assert encode_export_response("traces", "json", 0, "") == b"{}"
    assert encode_export_response("logs", "json", 0, "") == b"{}"


def test_partial_success_round_trips_in_protobuf() -> None:
    traces = ExportTraceServiceResponse()
    traces.ParseFromString(encode_export_response("traces", "protobuf", 3, "3 spans rejected"))
    assert traces.partial_success.rejected_spans == 3
    assert traces.partial_success.error_message == "3 spans rejected"
    logs = ExportLogsServiceResponse()
    logs.ParseFromString(encode_export_response("logs", "protobuf", 2, ""))
    assert logs.partial_success.rejected_log_records == 2
    assert logs.HasField("partial_success")


def test_partial_success_in_json_is_written_as_the_spec_writes_it() -> None:
    body = encode_export_response("traces", "json", 3, "bad spans")
    assert json.loads(body) == {
        "partialSuccess": {"rejectedSpans": "3", "errorMessage": "bad spans"}
    }
    assert json_format.Parse(body, ExportTraceServiceResponse()).partial_success.rejected_spans == 3
    warning = encode_export_response("logs", "json", 0, "accepted, but note this")
    assert json.loads(warning) == {"partialSuccess": {"errorMessage": "accepted, but note this"}}
    logs = json.loads(encode_export_response("logs", "json", 5, "x"))
    assert logs == {"partialSuccess": {"rejectedLogRecords": "5", "errorMessage": "x"}}


def test_error_answers_are_google_rpc_status() -> None:
    status = status_pb2.Status()
    status.ParseFromString(encode_status(400, "Body is not valid JSON", "protobuf"))
    assert (status.code, status.message) == (3, "Body is not valid JSON")
    assert json.loads(encode_status(413, "too big", "json")) == {"code": 3, "message": "too big"}
    assert json.loads(encode_status(401, "no key", "json")) == {"code": 16, "message": "no key"}
    assert json.loads(encode_status(429, "slow down", "json"))["code"] == 8
    assert json.loads(encode_status(503, "busy", "json"))["code"] == 14
    assert json.loads(encode_status(418, "teapot", "json"))["code"] == 9


def test_errors_carry_their_http_status() -> None:
    assert issubclass(OtlpBadRequest, OtlpError)
    assert (OtlpBadRequest("x").status_code, OtlpTooLarge("x").status_code) == (400, 413)
    assert OtlpUnsupported("x").status_code == 415
    assert str(OtlpBadRequest("the reason")) == "the reason"


def test_rejection_message_summarizes_reasons() -> None:
    assert otlp.rejection_message([], "spans") == ""
    message = otlp.rejection_message([f"r{i}" for i in range(7)], "spans")
    assert message == "7 spans rejected: r0; r1; r2; r3; r4; and 2 more"


# --- nothing but OtlpError comes out ------------------------------------------------------------


def _mutations(seed: bytes, rng: random.Random, count: int) -> Iterator[bytes]:
    for _ in range(count):
        data = bytearray(seed)
        choice = rng.randrange(4)
        if choice == 0:  # truncate
            yield bytes(data[: rng.randrange(len(data))])
        elif choice == 1:  # flip a few bytes
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            yield bytes(data)
        elif choice == 2:  # splice in random bytes
            at = rng.randrange(len(data))
            yield bytes(data[:at] + rng.randbytes(rng.randint(1, 16)) + data[at:])
        else:
            yield rng.randbytes(rng.randint(0, 256))


# What OTLP JSON may hold where something else belongs: json_format's quirks (text for numbers,
# enum names, floats for integers, strings or lists standing for messages), values at the edges
# of the 64-bit ranges (orjson reads integers beyond them as floats), text that is not valid
# UTF-8 (the stdlib parser's), and field names in both spellings, with nulls that clear them.
_JSON_VALUES: list[Any] = [
    *(None, 0, -1, 2, 2.0, 2.5, 1e19, -9.223372036854775808e18, 1.5, True, False),
    *(2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 2**70, 2**32 + 2),
    *("", "zz", "00", "200", " 200", "\t200", "2_00", "1e3", "12x", "+5", "0x10", "١٢", "a"),
    *("0" * 32, "ab" * 16, "ab" * 8, "AB" * 8, "aGVsbG8", "@@", "abc", "NaN", "nan", "-Infinity"),
    *("SPAN_KIND_SERVER", "STATUS_CODE_ERROR", "SEVERITY_NUMBER_WARN", "\ud800", "\ud83d\ude00"),
    *(float("nan"), float("inf"), [], {}, [1], [None], ["x"], ["spans"], ["[e]"], {"a": 1}),
    *({"stringValue": "s"}, {"intValue": "7"}, {"doubleValue": 1}, {"boolValue": True}),
    *({"bytesValue": "AAEC"}, {"stringValue": "a", "intValue": 1}, {"int_value": None}),
    {"stringValue": "a", "string_value": None},
    {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 3}]}},
    {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}},
    [{"key": "http.method", "value": {"stringValue": "GET"}, "keyStrindex": 1}],
    [{"traceId": "zz"}],
]
_JSON_NAMES = (
    *("resourceSpans", "resource_spans", "scope_spans", "logRecords", "log_records", "body"),
    *("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id", "links"),
    *("kind", "status", "code", "startTimeUnixNano", "end_time_unix_nano", "severityNumber"),
    *("stringValue", "string_value", "intValue", "int_value", "doubleValue", "arrayValue"),
    *("kvlist_value", "bytesValue", "values", "key", "value", "attributes", "keyStrindex"),
    *("eventName", "[ext]", "[a.b]\n", "\ud800", "x"),
)


def _nested_value(rng: random.Random) -> dict[str, Any]:
    """An AnyValue nested around json_format's depth limit (100 messages)."""
    value: dict[str, Any] = {"stringValue": "deep"}
    for _ in range(rng.randint(40, 50)):
        if rng.random() < 0.5:
            value = {"arrayValue": {"values": [value]}}
        else:
            value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


def _json_edits(document: Any, rng: random.Random, count: int) -> Iterator[bytes]:
    """``document`` with a few values replaced, fields added or renamed, as JSON bytes (now and
    then in UTF-16, after a BOM or with raw surrogates, which only the stdlib parser reads)."""

    def paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        yield path
        if isinstance(node, dict):
            for key, value in node.items():
                yield from paths(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from paths(value, (*path, index))

    for _ in range(count):
        mutated = copy.deepcopy(document)
        for _ in range(rng.choice((1, 1, 2, 3))):
            path = rng.choice(list(paths(mutated))[1:])
            parent = mutated
            for step in path[:-1]:
                parent = parent[step]
            node = parent[path[-1]]
            choice = rng.randrange(4)
            if choice == 1 and isinstance(node, dict):
                node[rng.choice(_JSON_NAMES)] = copy.deepcopy(rng.choice(_JSON_VALUES))
            elif choice == 2 and isinstance(node, dict) and node:
                key = rng.choice(list(node))
                node[rng.choice(_JSON_NAMES)] = node.pop(key)
                if rng.random() < 0.3:
                    node[key] = None
            elif choice == 3 and rng.random() < 0.2:
                parent[path[-1]] = _nested_value(rng)
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(_JSON_VALUES))
        text = json.dumps(mutated)
        encoding = rng.random()
        if encoding < 0.03:
            yield text.encode("utf-16")
        elif encoding < 0.06:
            yield b"\xef\xbb\xbf" + text.encode()
        elif encoding < 0.1:
            yield json.dumps(mutated, ensure_ascii=False).encode("utf-8", "surrogatepass")
        else:
            yield text.encode()


def _json_mutations(document: Any, rng: random.Random, count: int) -> Iterator[bytes]:
    replacements: list[Any] = [None, 0, -1, 2**70, 1.5, "", "zz", "00", True, [], {}, [1], {"a": 1}]

    def paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        yield path
        if isinstance(node, dict):
            for key, value in node.items():
                yield from paths(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from paths(value, (*path, index))

    every = list(paths(document))[1:]
    for _ in range(count):
        mutated = copy.deepcopy(document)
        path = rng.choice(every)
        parent = mutated
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = rng.choice(replacements)
        yield json.dumps(mutated).encode()


def test_random_and_damaged_payloads_raise_only_otlp_errors(sdk_logs: SdkLogs) -> None:
    rng = random.Random(20261204)
    sdk = Sdk()
    sdk.span("GET", SpanKind.SERVER, OLD_SERVER, error=ValueError("v"))
    sdk.span("POST", SpanKind.CLIENT, STABLE_SERVER)
    sdk.span("chat", SpanKind.CLIENT, {"gen_ai.system": "openai", "x": (1.5, 2.5)})
    sdk_logs.logger.warning("careful", extra={"http.route": "/x", "n": 3, "f": 1.5})
    traces = sdk.request()
    logs = sdk_logs.request()
    cases: list[tuple[Any, bytes, otlp.Encoding]] = []
    for decode, message in ((decode_traces, traces), (decode_logs, logs)):
        cases += [
            (decode, body, "protobuf")
            for body in _mutations(message.SerializeToString(), rng, 1500)
        ]
        cases += [(decode, body, "json") for body in _mutations(as_json(message), rng, 500)]
        cases += [
            (decode, body, "json")
            for body in _json_mutations(json.loads(as_json(message)), rng, 800)
        ]
        cases += [
            (decode, body, "json") for body in _json_edits(json.loads(as_json(message)), rng, 800)
        ]
    outcomes = {"decoded": 0, "refused": 0}
    for decode, body, encoding in cases:
        try:
            decode(body, encoding)
        except OtlpError as error:
            assert error.status_code in (400, 413)
            assert str(error)
            outcomes["refused"] += 1
        else:
            outcomes["decoded"] += 1
    # Both paths were exercised: the mutations are neither all harmless nor all fatal.
    assert outcomes["decoded"] > 100
    assert outcomes["refused"] > 100


# --- OTLP JSON: the walk reads what json_format read ---------------------------------------------


def _json_format_reading(body: bytes, signal: str) -> Any:
    """The JSON path before the walk: json.loads, the ids rewritten from hex into base64,
    json_format.ParseDict ignoring unknown fields, then the protobuf path on the message."""
    refused = ("refused", 400)
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return refused
    if not isinstance(document, dict):
        return refused
    keys = {
        "traces": (("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans",)),
        "logs": (
            ("resourceLogs", "resource_logs"),
            ("scopeLogs", "scope_logs"),
            ("logRecords", "log_records"),
        ),
    }[signal]
    ids = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")

    def under(parent: dict[str, Any], names: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        for name in names:
            children = parent.get(name)
            if isinstance(children, list):
                yield from (child for child in children if isinstance(child, dict))

    for resource in under(document, keys[0]):
        for scope in under(resource, keys[1]):
            for item in under(scope, keys[2]):
                for holder in (item, *under(item, ("links",))):
                    for key in ids:
                        value = holder.get(key)
                        if isinstance(value, str):
                            if not re.fullmatch("(?:[0-9a-fA-F]{2})*", value):
                                return refused
                            holder[key] = base64.b64encode(bytes.fromhex(value)).decode()
    request: Any = ExportTraceServiceRequest() if signal == "traces" else ExportLogsServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except Exception:
        return refused
    decode: Any = decode_traces if signal == "traces" else decode_logs
    try:
        return decode(request.SerializeToString(), "protobuf")
    except OtlpError as error:
        return ("refused", error.status_code)


def test_json_is_decoded_and_refused_exactly_as_json_format_did(sdk_logs: SdkLogs) -> None:
    rng = random.Random(20261205)
    sdk = Sdk()
    sdk.span("GET", SpanKind.SERVER, OLD_SERVER, error=ValueError("v"))
    sdk.span("POST", SpanKind.CLIENT, STABLE_SERVER)
    sdk.span("chat", SpanKind.CLIENT, {"gen_ai.system": "openai", "x": (1.5, 2.5), "b": True})
    sdk_logs.logger.warning("careful", extra={"http.route": "/x", "n": 3, "http.status_code": "4"})
    documents = [
        ("traces", json.loads(as_json(sdk.request()))),
        ("traces", SPEC_JSON),
        ("logs", json.loads(as_json(sdk_logs.request()))),
    ]
    outcomes = {"decoded": 0, "refused": 0}
    for signal, document in documents:
        decode: Any = decode_traces if signal == "traces" else decode_logs
        for body in _json_edits(document, rng, 700):
            expected = _json_format_reading(body, signal)
            try:
                actual = decode(body, "json")
            except OtlpError as error:
                actual = ("refused", error.status_code)
            assert actual == expected, body
            outcomes["refused" if isinstance(actual, tuple) else "decoded"] += 1
    assert min(outcomes.values()) > 300


def test_json_edge_cases_read_as_json_format_read_them() -> None:
    span = SPEC_JSON["resourceSpans"][0]["scopeSpans"][0]["spans"][0]

    def with_span(**fields: Any) -> bytes:
        return _spec_json_with(**fields)

    cases = [
        with_span(kind="SPAN_KIND_SERVER"),  # enum names are accepted
        with_span(kind="SPAN_KIND_NEW"),  # an unknown name is skipped: kind stays unset
        with_span(kind=2**32 + 2),  # upb looks enum numbers up by their low 32 bits
        with_span(startTimeUnixNano=1.796e18, endTimeUnixNano="1.797e18"),
        with_span(startTimeUnixNano="12x"),
        with_span(startTimeUnixNano=-(2**63) - 1),  # orjson reads this as a float
        with_span(status={"code": -(2**63) - 1}),
        with_span(status={"code": -9.223372036854775808e18}),
        with_span(status="STATUS_CODE_ERROR"),  # a string standing for a message: empty
        with_span(status=["code"]),
        with_span(attributes=[*span["attributes"], {"key": "k", "value": {"intValue": "1 "}}]),
        with_span(links=[{"traceId": TRACE_HEX, "parentSpanId": "xyz"}]),
        with_span(**{"[ext]": 1}),
        with_span(traceId=TRACE_HEX, trace_id=None),  # the later name wins, null clears
        with_span(name="caf\udce9"),  # a lone surrogate, which UTF-8 cannot encode
        json.dumps(SPEC_JSON).encode("utf-16"),
        b'{"resourceSpans": [], "x": NaN}',
    ]
    for body in cases:
        expected = _json_format_reading(body, "traces")
        try:
            actual: Any = decode_traces(body, "json")
        except OtlpError as error:
            actual = ("refused", error.status_code)
        assert actual == expected, body


def test_attribute_value_bytes_of_any_shape_raise_only_otlp_errors() -> None:
    # Span attributes reach the mapping as raw AnyValue bytes (see _span_attributes_as_map),
    # read by hand on the fast path: every shape of bytes must give a value or an OtlpError.
    def encoded(**value: Any) -> bytes:
        data: bytes = AnyValue(**value).SerializeToString()
        return data

    long_text = encoded(string_value="x" * 128)  # a two-byte length
    minus_one = encoded(int_value=-1)
    largest = encoded(int_value=2**63 - 1)
    two_hundred = encoded(int_value=200)
    real = encoded(double_value=404.0)
    one_header = encoded(array_value={"values": [AnyValue(string_value="a")]})
    two_headers = encoded(
        array_value={"values": [AnyValue(string_value="b" * 200), AnyValue(string_value="")]}
    )
    number_array = encoded(array_value={"values": [AnyValue(int_value=1)]})
    empty_array = encoded(array_value={})
    valid = [encoded(string_value="x" * n) for n in (0, 1, 127, 300)] + [
        long_text, minus_one, largest, two_hundred, real, encoded(int_value=0),
        one_header, two_headers, number_array, empty_array,
    ]  # fmt: skip
    rng = random.Random(7)
    samples = [b"", b"\x0a", b"\x18", b"\x2a", b"\x0a\x80", b"\x18\xff", b"\x18" + b"\xff" * 12]
    for raw in valid:
        samples += [raw[:cut] for cut in range(len(raw))]
        samples += [raw + rng.randbytes(3) for _ in range(5)]
    samples += [rng.randbytes(rng.randint(1, 40)) for _ in range(3000)]
    samples += [b"\x2a" + rng.randbytes(rng.randint(1, 20)) for _ in range(1000)]
    for raw in samples:
        for read in (otlp._text, otlp._integer):
            with contextlib.suppress(OtlpError):
                read({"k": raw}, "k")
        with contextlib.suppress(OtlpError):
            otlp._header_text(raw)
    assert otlp._text({"k": long_text}, "k") == "x" * 128
    assert otlp._integer({"k": minus_one}, "k") == -1
    assert otlp._integer({"k": largest}, "k") == 2**63 - 1
    assert otlp._text({"k": two_hundred}, "k") == "200"
    assert otlp._integer({"k": real}, "k") == 404
    assert otlp._header_text(one_header) == "a"
    assert otlp._header_text(two_headers) == "b" * 200 + ", "
    assert otlp._header_text(number_array) == "1"  # not all strings: the general path
    assert otlp._header_text(empty_array) == ""
    with pytest.raises(OtlpBadRequest, match="not UTF-8"):
        otlp._text({"k": b"\x0a\x01\xff"}, "k")  # as upb refuses such a string field


def test_a_query_in_http_target_is_read_there_and_a_bare_target_takes_http_urls() -> None:
    with_query = raw_span(
        attributes=attrs(http__method="GET", http__status_code=200, http__target="/a?x=1&x=2")
    )
    bare = raw_span(
        span_id=bytes.fromhex("00000000000000bb"),
        attributes=attrs(
            http__method="GET",
            http__status_code=200,
            http__target="/b",
            http__url="http://h/b?y=%20z+1",
        ),
    )
    first, second = decode_traces(traces_body(with_query, bare), "protobuf").exchanges
    assert (first.pathname, first.query) == ("/a", {"x": ["1", "2"]})
    assert (second.pathname, second.query) == ("/b", {"y": " z 1"})
