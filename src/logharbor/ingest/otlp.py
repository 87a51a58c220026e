"""OTLP/HTTP front-end: request bodies in, ``HttpExchange`` / ``LogLine`` records out.

Pure functions, no database, web framework or app state: the route reads the body, calls
``read_body``, ``encoding_for`` and ``decode_traces`` / ``decode_logs``, hands the records to the
pipeline and answers with ``encode_export_response`` (or ``encode_status`` for an ``OtlpError``).

One mapping serves both OTLP encodings. Protobuf input is parsed by opentelemetry-proto's
generated classes and walked directly (no ``MessageToDict``) because this is the hot path, and
span attributes are read from raw bytes (see ``_span_attributes_as_map``) for the same reason.
JSON input is read by orjson and a walk that checks it as json_format did, into objects with the
same field names (see "OTLP JSON" below); attribute helpers read both forms.

Only SERVER and CLIENT spans that carry an HTTP method become exchanges; GenAI spans and every
other span are accepted and counted (they are valid telemetry, just not stored yet). Structural
problems (undecodable bodies, malformed ids, too many items) refuse the whole request; a span or
log record that is well-formed but cannot become a record is refused alone, with a reason the
route passes back as OTLP partial success.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple, TypeAlias
from urllib.parse import parse_qsl, urlsplit

import orjson

# protobuf ships no type information and types-protobuf is not a dependency here; these two
# imports are the only untyped boundary, and every value read through them is narrowed below.
from google.protobuf import (  # type: ignore[import-untyped]
    descriptor_pb2,
    descriptor_pool,
    json_format,
    message_factory,
)
from google.rpc import status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from logharbor.ingest import genai
from logharbor.ingest.records import ExceptionInfo, Frame, Generation, HttpExchange, LogLine
from logharbor.ingest.records import Span as SpanRecord
from logharbor.traffic.normalize import METHODS

__all__ = [
    "ACCEPTED_CONTENT_ENCODINGS",
    "MAX_ITEMS",
    "DecodedLogs",
    "DecodedTraces",
    "Encoding",
    "OtlpBadRequest",
    "OtlpError",
    "OtlpTooLarge",
    "OtlpUnsupported",
    "Signal",
    "content_type_for",
    "decode_logs",
    "decode_traces",
    "encode_export_response",
    "encode_status",
    "encoding_for",
    "frames_from_stacktrace",
    "read_body",
    "rejection_message",
]

Encoding: TypeAlias = Literal["protobuf", "json"]
Signal: TypeAlias = Literal["traces", "logs"]
# An attribute value decoded to plain Python: what JSON columns hold.
Plain: TypeAlias = "str | int | float | bool | list[Plain] | dict[str, Plain] | None"
# A span's attributes: AnyValue bytes from protobuf (see _span_attributes_as_map), plain values
# from OTLP JSON. The mapping reads both through _text, _integer and _header_text.
_Attributes: TypeAlias = "Mapping[str, bytes | Plain]"

# The OpenTelemetry Collector's default batch size: SDK exporters send at most 512 per request,
# a collector in front of us at most this many. Bigger requests are refused whole (413), which
# tells the sender to split its batches, rather than holding thousands of records in memory.
MAX_ITEMS = 8192
# For the route's Accept-Encoding header on a 415 caused by the content coding (RFC 9110 15.5.16).
ACCEPTED_CONTENT_ENCODINGS = "gzip, identity"

MAX_FRAMES = 50
MAX_EXCEPTION_MESSAGE_CHARS = 2000
MAX_STACKTRACE_BYTES = 16 * 1024
# Reasons end up in the partial-success error_message and in logs: keep each one readable.
_MAX_REASON_CHARS = 300

_SPAN_KIND_SERVER = 2
_SPAN_KIND_CLIENT = 3
_STATUS_CODE_ERROR = 2
_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
_ZERO_TRACE_ID = bytes(_TRACE_ID_BYTES)
_ZERO_SPAN_ID = bytes(_SPAN_ID_BYTES)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_METHODS = frozenset(METHODS)
# Matched against "\n" + the joined keys: the literal prefix lets re skip ahead quickly.
_HEADER_KEY = re.compile(r"\nhttp\.(request|response)\.header\.([^\n]+)")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


# --- errors -------------------------------------------------------------------------------------


class OtlpError(Exception):
    """A request the route must refuse; ``str(error)`` is the reason meant for the client."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OtlpBadRequest(OtlpError):
    status_code = 400


class OtlpTooLarge(OtlpError):
    status_code = 413


class OtlpUnsupported(OtlpError):
    """Unsupported Content-Type or Content-Encoding: HTTP answers both with 415."""

    status_code = 415


# --- results ------------------------------------------------------------------------------------


@dataclass(slots=True)
class DecodedTraces:
    exchanges: list[HttpExchange] = field(default_factory=list)
    generations: list[Generation] = field(default_factory=list)
    # The spans that are neither (database queries, functions), for a trace's waterfall.
    spans: list[SpanRecord] = field(default_factory=list)
    # One reason per refused span (the request itself was fine).
    rejected: list[str] = field(default_factory=list)
    total: int = 0


@dataclass(slots=True)
class DecodedLogs:
    lines: list[LogLine] = field(default_factory=list)
    # ``gen_ai.client.inference.operation.details`` events: the content of the LLM call of
    # their span, to be stored with it.
    details: list[Generation] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    genai_events: int = 0
    total: int = 0


# --- transport ----------------------------------------------------------------------------------


def read_body(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The request body with its content coding removed, at most ``max_bytes`` long.

    gzip is inflated incrementally, so a bomb costs at most ``max_bytes`` of memory before it is
    refused. An unknown coding raises ``OtlpUnsupported`` (415: RFC 9110 says so for codings too;
    the route should add ``Accept-Encoding: gzip, identity``), a corrupt or truncated gzip stream
    ``OtlpBadRequest`` and anything longer than ``max_bytes`` ``OtlpTooLarge``.
    """
    codings = [
        token.strip().lower() for token in (content_encoding or "").split(",") if token.strip()
    ]
    data = body
    # Codings are listed in the order they were applied: undo them last first.
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding not in ("gzip", "x-gzip"):
            raise OtlpUnsupported(
                f"Content-Encoding {coding!r} is not supported (use gzip or identity)"
            )
        data = _gunzip(data, max_bytes)
    if len(data) > max_bytes:
        raise OtlpTooLarge(f"Request body is larger than {max_bytes} bytes")
    return data


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    pending = data
    try:
        # A gzip body may hold several members back to back (RFC 1952), as Go's reader accepts.
        while True:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            while not inflater.eof:
                # max_length bounds each step, so the bomb never expands past the limit + 1.
                chunk = inflater.decompress(pending, max_bytes - size + 1)
                pending = inflater.unconsumed_tail
                size += len(chunk)
                if size > max_bytes:
                    raise OtlpTooLarge(
                        f"Decompressed request body is larger than {max_bytes} bytes"
                    )
                chunks.append(chunk)
                if not chunk and not pending:
                    raise OtlpBadRequest("gzip body is truncated")
            pending = inflater.unused_data
            if not pending:
                break
    except zlib.error as exc:
        raise OtlpBadRequest(f"gzip body is corrupt: {exc}") from None
    return b"".join(chunks)


def encoding_for(content_type: str | None) -> Encoding:
    """The OTLP encoding a Content-Type names; parameters (charset=...) are allowed."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("application/x-protobuf", "application/protobuf"):
        return "protobuf"
    if media == "application/json":
        return "json"
    raise OtlpUnsupported(
        f"Content-Type {media or '(none)'!r} is not supported: OTLP/HTTP is "
        "application/x-protobuf or application/json"
    )


def content_type_for(encoding: Encoding) -> str:
    """The Content-Type of an answer: OTLP answers in the request's encoding."""
    return "application/x-protobuf" if encoding == "protobuf" else "application/json"


# --- parsing ------------------------------------------------------------------------------------


def _span_attributes_as_map() -> Any:
    """ExportTraceServiceRequest, with ``Span.attributes`` declared ``map<string, bytes>``.

    A map field's wire format is exactly that of a repeated KeyValue (key = 1, value = 2, the
    last of a repeated key wins), so the same bytes parse, each value being an AnyValue's
    encoding. upb then indexes each span's attributes in C, and Python reads only the keys and
    the few values the mapping needs, mostly through ``_text``'s fast path. Reading a
    KeyValue list instead allocates a wrapper per KeyValue and per AnyValue (about 0.3 µs
    each, several µs for an array), which made that the largest cost of a decode.
    """
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: Any) -> None:
        for dependency in file.dependencies:
            add(dependency)
        name: str = file.name
        if name in added:
            return
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        for message in proto.message_type:
            if proto.package == "opentelemetry.proto.trace.v1" and message.name == "Span":
                _make_attributes_a_map(message)
        pool.Add(proto)
        added.add(name)

    add(ExportTraceServiceRequest.DESCRIPTOR.file)
    name = ExportTraceServiceRequest.DESCRIPTOR.full_name
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def _make_attributes_a_map(span: Any) -> None:
    entry = span.nested_type.add(name="AttributesEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, label=1, type=9)  # optional string
    entry.field.add(
        name="value",
        number=2,
        label=1,
        type=12,  # optional bytes: the AnyValue, decoded on demand
    )
    for field_proto in span.field:
        if field_proto.name == "attributes":
            field_proto.type_name = ".opentelemetry.proto.trace.v1.Span.AttributesEntry"
            return
    raise RuntimeError("opentelemetry-proto's Span has no attributes field")


_TracesWithAttributeMaps = _span_attributes_as_map()


def _parse_protobuf(body: bytes, message: Any) -> None:
    try:
        message.ParseFromString(body)
    # upb documents DecodeError, but the exceptions its C parser raises are not a stable API
    # across protobuf releases; whatever untrusted bytes make it raise is the client's 400.
    except Exception as exc:
        raise OtlpBadRequest(_reason(f"Body is not a valid OTLP protobuf message: {exc}")) from None


# (service name, scope name, spans or log records) for each scope of a request.
_Batch: TypeAlias = tuple[str | None, str, Iterable[Any]]


def _protobuf_batches(groups: Any, scope_field: str, item_field: str) -> Iterator[_Batch]:
    for group in groups:
        service = _service_name(group.resource)
        for scope in getattr(group, scope_field):
            scope_name: str = scope.scope.name
            yield service, scope_name, getattr(scope, item_field)


def _count(groups: Iterable[Any], scope_field: str, item_field: str) -> int:
    return sum(
        len(getattr(scope, item_field)) for group in groups for scope in getattr(group, scope_field)
    )


def _batches(body: bytes, encoding: Encoding, signal: Signal) -> tuple[Iterable[_Batch], int]:
    """The export's items by resource and scope, and how many there are (at most MAX_ITEMS)."""
    batches: Iterable[_Batch]
    if encoding == "protobuf":
        request = _TracesWithAttributeMaps() if signal == "traces" else ExportLogsServiceRequest()
        _parse_protobuf(body, request)
        groups, scope_field, item_field = (
            (request.resource_spans, "scope_spans", "spans")
            if signal == "traces"
            else (request.resource_logs, "scope_logs", "log_records")
        )
        total = _count(groups, scope_field, item_field)
        batches = _protobuf_batches(groups, scope_field, item_field)
    else:
        batches, total = _json_batches(body, signal)
    _check_size(total, "spans" if signal == "traces" else "log records")
    return batches, total


def _check_size(total: int, noun: str) -> None:
    if total > MAX_ITEMS:
        raise OtlpTooLarge(
            f"Request holds {total} {noun}; at most {MAX_ITEMS} are accepted per request "
            "(lower the exporter's batch size)"
        )


# --- OTLP JSON ----------------------------------------------------------------------------------
#
# OTLP JSON is proto3's JSON mapping of the same messages, with ids in hex. It used to be read by
# json.loads, the ids rewritten in base64, json_format.ParseDict into the generated classes and,
# for traces, a serialization re-read with attribute maps. Measured (best of 15, one core) on
# 512 SDK spans with the old HTTP attributes / 512 with the stable ones / 512 SDK log records:
# 200 / 138 / 76 ms per request that way, against 25 / 12 / 7.5 ms for the same requests in
# protobuf, nearly all of it in ParseDict, which sets a upb message field by field from Python.
# OpenTelemetry JS exports JSON by default, so JSON is now read by the walk below instead:
# orjson, then every message read field by field as ParseDict (ignoring unknown fields) reads it
# (same types, ranges, null and duplicate-name rules, depth limit and refusals), attribute values
# going straight to the plain Python the mapping reads: 34 / 19 / 9 ms for the same requests.
# The field tables come from opentelemetry-proto's descriptors, so fields, names and ranges are
# the generated classes' own; test_otlp checks the walk against json_format on thousands of
# damaged documents.

_MAX_JSON_DEPTH = 100  # json_format's max_recursion_depth: messages nested deeper are refused
# json_format refuses a key of this shape even when it ignores unknown fields (an extension).
_EXTENSION_NAME = re.compile(r"\[[a-zA-Z0-9\._]*\]$")
# UTF-8 has no surrogate code points: upb refused text holding one wherever it met it.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Every one of these keys holding text in a span, link or log record had to be hex, known field
# or not: the old reader rewrote them all before ParseDict looked at the document.
_ID_KEYS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
_ID_FIELDS = frozenset(("trace_id", "span_id", "parent_span_id"))
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_KEEP: Any = object()  # an enum name json_format does not know: the field keeps its value


class _Invalid(Exception):
    """Why a document is not OTLP JSON; the path to the culprit is added on the way out."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why
        self.path: list[str | int] = []

    def where(self) -> str:
        steps = [f"[{step}]" if isinstance(step, int) else f".{step}" for step in self.path]
        return "".join(reversed(steps)).lstrip(".")


class _Ambiguous(Exception):
    """An integer or enum field got a float of 2**63 or more from orjson, which reads integer
    literals beyond 64 bits as floats: the stdlib reads the document again, as before, to
    decide (-2**63 - 1 is out of range, -9.3e18 is -2**63)."""


class _SurrogateText(str):
    """Text from the stdlib parser that holds surrogate code points (see ``_stdlib_json``)."""


class _WideFloat(float):
    """A float of 2**63 or more from the stdlib parser: a literal, not a rounded integer."""


_Reader: TypeAlias = Callable[[Any, int], Any]


class _Field(NamedTuple):
    name: str  # the proto name: the key in what _read returns
    # (a JSON value other than null, the depth of the message holding it) -> the field's value
    read: _Reader


@dataclass(slots=True, eq=False)
class _Schema:
    fields: dict[str, _Field] = field(default_factory=dict)  # by JSON name and by proto name
    item: bool = False  # a span, link or log record: see _ID_KEYS
    links: bool = False  # a log record, whose (unknown) links were rewritten too


def _json_request(body: bytes, schema: _Schema) -> dict[str, Any]:
    try:
        return _read_request(orjson.loads(body), schema)
    # The stdlib reads more than orjson (a BOM, UTF-16 and -32, surrogate escapes, NaN, integers
    # beyond 64 bits): what it read before is read the same way now.
    except (orjson.JSONDecodeError, _Ambiguous):
        return _read_request(_stdlib_json(body), schema)


def _stdlib_json(body: bytes) -> Any:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise OtlpBadRequest(_reason(f"Body is not valid JSON: {exc}")) from None
    # Mark what orjson never returns, for the readers to answer as ParseDict did (a loop, not
    # recursion: the stdlib nests as deep as the interpreter's recursion limit).
    stack = [document]
    while stack:
        node = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        for key, value in list(node.items() if isinstance(node, dict) else enumerate(node)):
            if isinstance(value, (dict, list)):
                stack.append(value)
            elif isinstance(value, str) and _SURROGATE.search(value):
                node[key] = _SurrogateText(value)
            elif isinstance(value, float) and abs(value) >= 1 << 63:
                node[key] = _WideFloat(value)
    return document


def _read_request(document: Any, schema: _Schema) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise OtlpBadRequest("OTLP JSON body must be an object")
    try:
        return _read(document, schema, 1)
    except _Invalid as error:
        where = error.where()
        text = f"Body is not valid OTLP JSON: {error.why}" + (f" at {where}" if where else "")
        raise OtlpBadRequest(_reason(text)) from None


def _read(value: Any, schema: _Schema, depth: int) -> dict[str, Any]:
    """A message's fields by proto name, read as ParseDict reads them: by either name, in order
    (the later of two names for one field wins), null clearing, unknown fields skipped."""
    if depth > _MAX_JSON_DEPTH:
        raise _Invalid(f"messages are nested more than {_MAX_JSON_DEPTH} deep")
    if type(value) is not dict:
        _not_an_object(value, schema)
        return {}
    fields = schema.fields
    result: dict[str, Any] = {}
    for name, item in value.items():
        known = fields.get(name)
        if known is None:
            _unknown(name, item, schema)
        elif item is None:
            result.pop(known.name, None)
        else:
            try:
                read = known.read(item, depth)
            except _Invalid as error:
                error.path.append(name)
                raise
            if read is not _KEEP:
                result[known.name] = read
    return result


def _not_an_object(value: Any, schema: _Schema) -> None:
    """ParseDict takes whatever stands for a message as a list of field names: a string's
    characters (no field has a one-character name) or a list's items; anything else fails."""
    if isinstance(value, str) and not isinstance(value, _SurrogateText):
        return
    if not isinstance(value, list):
        raise _Invalid(f"expected an object, not {_json_kind(value)}")
    for name in value:
        if not isinstance(name, str) or name in schema.fields:
            raise _Invalid("expected an object, not a list")
        _unknown_name(name)


def _unknown(name: str, value: Any, schema: _Schema) -> None:
    _unknown_name(name)
    if schema.item:
        if name in _ID_KEYS and isinstance(value, str):
            _check_hex(value, name)
        elif schema.links and name == "links" and isinstance(value, list):
            for link in value:
                if isinstance(link, dict):
                    for key in _ID_KEYS:
                        text = link.get(key)
                        if isinstance(text, str):
                            _check_hex(text, f"links.{key}")


def _unknown_name(name: str) -> None:
    if _EXTENSION_NAME.match(name):
        raise _Invalid(f"{name!r} names an extension, and OTLP messages have none")
    if _SURROGATE.search(name):
        raise _Invalid(f"the field name {name!r} holds surrogate code points")


def _check_hex(text: str, key: str) -> None:
    if not _HEX.fullmatch(text):
        raise _Invalid(f"{key} must be hex digits in OTLP JSON: {text!r}")


def _json_kind(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else "text"


# --- OTLP JSON: field readers -------------------------------------------------------------------
#
# Each takes a JSON value other than null and the depth of the message holding the field, and
# answers as json_format's converters do (their Python quirks included: a double field takes
# true as 1.0, an integer field "1e3" or 2.0, an enum field 2.5 as 2).


def _string(value: Any, depth: int) -> str:
    if type(value) is str:
        return value
    if isinstance(value, _SurrogateText):
        raise _Invalid(f"text holds surrogate code points, which UTF-8 cannot encode: {value!r}")
    raise _Invalid(f"expected text, not {_json_kind(value)}")


def _boolean(value: Any, depth: int) -> bool:
    if value is True or value is False:
        flag: bool = value
        return flag
    raise _Invalid(f"expected true or false, not {_json_kind(value)}")


def _double(value: Any, depth: int) -> float:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise _Invalid('a number that is not finite must be written "NaN" or "Infinity"')
        return float(value)
    if value == "nan":
        raise _Invalid('write NaN as "NaN"')
    try:
        return float(value)  # text too: "NaN", "-Infinity", " 1.5 "
    except (ValueError, TypeError, OverflowError):
        raise _Invalid(f"expected a number, not {_json_kind(value)}") from None


def _base64(value: Any, depth: int) -> bytes:
    if not isinstance(value, str):
        raise _Invalid(f"expected base64 text, not {_json_kind(value)}")
    try:
        encoded = value.encode("utf-8")
        # As lenient as json_format: any padding, the URL-safe alphabet, stray characters.
        return base64.urlsafe_b64decode(encoded + b"=" * (4 - len(encoded) % 4))
    except ValueError:
        raise _Invalid(f"not base64: {value!r}") from None


def _hex_id(value: Any, depth: int) -> bytes:
    if not isinstance(value, str):
        raise _Invalid(f"expected hex digits, not {_json_kind(value)}")
    if not _HEX.fullmatch(value):
        raise _Invalid(f"ids must be hex digits in OTLP JSON: {value!r}")
    return bytes.fromhex(value)


def _integer_reader(low: int, high: int) -> _Reader:
    def read(value: Any, depth: int) -> int:
        number = value if type(value) is int else _json_integer(value)
        if low <= number <= high:
            return number
        raise _Invalid(f"{number} is out of range ({low} to {high})")

    return read


def _json_integer(value: Any) -> int:
    """An integer field's value other than an int: json_format's _ConvertInteger."""
    if isinstance(value, float):
        if type(value) is float and abs(value) >= 1 << 63:
            raise _Ambiguous
        if not value.is_integer():
            raise _Invalid(f"expected an integer, not {value!r}")
        return int(value)
    if not isinstance(value, str):
        raise _Invalid(f"expected an integer, not {_json_kind(value)}")
    if " " not in value:
        try:
            return int(value)  # other whitespace, "+7" and "1_000" too, as Python reads them
        except ValueError:
            pass
        try:
            real = float(value)  # "1e3"
        except ValueError:
            real = math.nan
        if real.is_integer():
            return int(real)
    raise _Invalid(f"expected an integer, not {value!r}")


def _enum_reader(names: dict[str, int]) -> _Reader:
    numbers = frozenset(names.values())

    def read(value: Any, depth: int) -> Any:
        if isinstance(value, _SurrogateText):
            raise _Invalid(f"text holds surrogate code points: {value!r}")
        try:
            number = names.get(value)
            if number is not None:
                return number
            if type(value) is float and abs(value) >= 1 << 63:
                raise _Ambiguous
            number = int(value)
        except ValueError:  # a name this version does not know: skipped, as unknown fields are
            return _KEEP
        except (TypeError, OverflowError):
            raise _Invalid(f"expected an enum number or name, not {_json_kind(value)}") from None
        if _INT64_MIN <= number <= _INT64_MAX:
            # upb looks a number up by its low 32 bits: 2**32 + 2 is SPAN_KIND_SERVER there.
            low = (number & 0xFFFFFFFF) - ((number & 0x80000000) << 1)
            if low in numbers:
                return low
            if -(1 << 31) <= number < 1 << 31:  # OTLP's enums are open: any int32 will do
                return number
        raise _Invalid(f"enum value {number} is out of range")

    return read


def _message_reader(schema: _Schema) -> _Reader:
    def read(value: Any, depth: int) -> dict[str, Any]:
        return _read(value, schema, depth + 1)

    return read


def _repeated(read: _Reader) -> _Reader:
    def read_all(value: Any, depth: int) -> list[Any]:
        if type(value) is not list:
            raise _Invalid(f"expected a list, not {_json_kind(value)}")
        result = []
        for index, item in enumerate(value):
            try:
                if item is None:
                    raise _Invalid("null is not allowed in a list")
                result.append(read(item, depth))
            except _Invalid as error:
                error.path.append(index)
                raise
        return result

    return read_all


def _json_key_values(value: Any, depth: int, as_map: bool = False) -> list[tuple[str, Plain]]:
    """A KeyValue list as ``(key, plain value)`` pairs, in order. ``as_map`` for a span's
    attributes, which upb reads as a map (see _span_attributes_as_map): it leaves out an entry
    with a field beyond key and value, as a KeyValue with a key_strindex is on the wire."""
    if type(value) is not list:
        raise _Invalid(f"expected a list, not {_json_kind(value)}")
    pairs: list[tuple[str, Plain]] = []
    append = pairs.append
    shallow = depth + 1 + _SIMPLE_DEPTH <= _MAX_JSON_DEPTH  # the KeyValue, then its value
    for index, item in enumerate(value):
        if shallow and type(item) is dict and len(item) == 2:
            key = item.get("key")
            any_value = item.get("value")
            if type(key) is str and type(any_value) is dict and len(any_value) == 1:
                plain = _simple_value(any_value)
                if plain is not _NOT_SIMPLE:
                    append((key, plain))
                    continue
        try:
            if item is None:
                raise _Invalid("null is not allowed in a list")
            fields = _read(item, _KEY_VALUE, depth + 1)
        except _Invalid as error:
            error.path.append(index)
            raise
        if not (as_map and fields.get("key_strindex")):
            append((fields.get("key", ""), fields.get("value")))
    return pairs


def _json_span_attributes(value: Any, depth: int) -> list[tuple[str, Plain]]:
    return _json_key_values(value, depth, as_map=True)


_NOT_SIMPLE: Any = object()
# How deep _simple_value reads: the AnyValue, an ArrayValue and the AnyValues in it.
_SIMPLE_DEPTH = 3


def _simple_value(value: dict[str, Any]) -> Any:  # Plain, or _NOT_SIMPLE
    """The usual AnyValues in one step, each as the general path below reads it: a string, an
    integer (64-bit integers may be text in JSON, as the collector writes them), a boolean, a
    double and an array of strings (captured headers); ``_NOT_SIMPLE`` for anything else."""
    text = value.get("stringValue")
    if type(text) is str:
        return text
    number = value.get("intValue")
    if type(number) is int:
        if _INT64_MIN <= number <= _INT64_MAX:
            return number
    elif type(number) is str:
        if len(number) <= 18 and number.isdigit() and number.isascii():
            return int(number)
    elif number is None:
        flag = value.get("boolValue")
        if flag is True or flag is False:
            plain: Plain = flag
            return plain
        real = value.get("doubleValue")
        if type(real) is float and math.isfinite(real):
            return real
        array = value.get("arrayValue")
        if type(array) is dict and len(array) == 1:
            items = array.get("values")
            if type(items) is list:
                strings: list[Plain] = [
                    item.get("stringValue") if type(item) is dict and len(item) == 1 else None
                    for item in items
                ]
                if all(type(string) is str for string in strings):
                    return strings
    return _NOT_SIMPLE


def _json_any_value(value: Any, depth: int) -> Plain:
    """An AnyValue as plain Python, as ``_plain`` gives it from protobuf."""
    if type(value) is dict and len(value) == 1 and depth + _SIMPLE_DEPTH <= _MAX_JSON_DEPTH:
        simple: Plain = _simple_value(value)
        if simple is not _NOT_SIMPLE:
            return simple
    depth += 1
    if depth > _MAX_JSON_DEPTH:
        raise _Invalid(f"messages are nested more than {_MAX_JSON_DEPTH} deep")
    if type(value) is not dict:
        _not_an_object(value, _ANY_VALUE)
        return None
    # A oneof: a second value is refused, even after null cleared the first; null clears the
    # value only when it names the one that is set.
    fields = _ANY_VALUE.fields
    which: str | None = None
    plain: Plain = None
    for name, item in value.items():
        known = fields.get(name)
        if known is None:
            _unknown(name, item, _ANY_VALUE)
            continue
        if item is None:
            if known.name == which:
                plain = None
            continue
        try:
            if which is not None:
                raise _Invalid("an AnyValue holds one value, not several")
            read = known.read(item, depth)
        except _Invalid as error:
            error.path.append(name)
            raise
        which = known.name
        plain = _PLAIN_MEMBERS[which](read) if which in _PLAIN_MEMBERS else None
    return plain


def _array_plain(fields: dict[str, Any]) -> Plain:
    values: list[Plain] = fields.get("values", [])
    return values


def _kvlist_plain(fields: dict[str, Any]) -> Plain:
    return dict(fields.get("values", ()))


def _same(value: Any) -> Plain:
    plain: Plain = value
    return plain


# What _plain gives for each member of AnyValue's oneof; any other member is None there too.
_PLAIN_MEMBERS: dict[str, Callable[[Any], Plain]] = {
    "string_value": _same,
    "bool_value": _same,
    "int_value": _same,
    "double_value": lambda real: _plain_double(real),
    "array_value": _array_plain,
    "kvlist_value": _kvlist_plain,
    "bytes_value": bytes.hex,
}


# --- OTLP JSON: the messages --------------------------------------------------------------------

_TYPE = descriptor_pb2.FieldDescriptorProto
_INTEGER_RANGES = {
    kind: (low, high)
    for kinds, low, high in (
        ((_TYPE.TYPE_INT64, _TYPE.TYPE_SINT64, _TYPE.TYPE_SFIXED64), _INT64_MIN, _INT64_MAX),
        ((_TYPE.TYPE_UINT64, _TYPE.TYPE_FIXED64), 0, (1 << 64) - 1),
        ((_TYPE.TYPE_INT32, _TYPE.TYPE_SINT32, _TYPE.TYPE_SFIXED32), -(1 << 31), (1 << 31) - 1),
        ((_TYPE.TYPE_UINT32, _TYPE.TYPE_FIXED32), 0, (1 << 32) - 1),
    )
    for kind in kinds
}
_SCALAR_READERS: dict[int, _Reader] = {
    _TYPE.TYPE_STRING: _string,
    _TYPE.TYPE_BOOL: _boolean,
    _TYPE.TYPE_DOUBLE: _double,
    _TYPE.TYPE_BYTES: _base64,
}
_ANY_VALUE_NAME = AnyValue.DESCRIPTOR.full_name
_KEY_VALUE_NAME = KeyValue.DESCRIPTOR.full_name
_ITEM_MESSAGES = frozenset(
    (Span.DESCRIPTOR.full_name, Span.Link.DESCRIPTOR.full_name, LogRecord.DESCRIPTOR.full_name)
)


def _schema(descriptor: Any, schemas: dict[str, _Schema]) -> _Schema:
    """How to read a message, from its descriptor (and those of the messages it holds)."""
    message: str = descriptor.full_name
    if message in schemas:
        return schemas[message]
    is_log_record = message == LogRecord.DESCRIPTOR.full_name
    schema = schemas[message] = _Schema(item=message in _ITEM_MESSAGES, links=is_log_record)
    if descriptor.oneofs and (
        message != _ANY_VALUE_NAME or len(descriptor.oneofs[0].fields) != len(descriptor.fields)
    ):
        raise RuntimeError(f"OTLP JSON: {message}'s oneofs are not read")
    by_json_name = {}
    for field_descriptor in descriptor.fields:
        proto_name: str = field_descriptor.name
        if len(proto_name) == 1 or len(field_descriptor.json_name) == 1:
            raise RuntimeError(f"OTLP JSON: {message}.{proto_name} has a one-character name")
        read = _field_reader(field_descriptor, message, schemas)
        schema.fields[proto_name] = by_json_name[field_descriptor.json_name] = _Field(
            proto_name, read
        )
    schema.fields.update(by_json_name)  # ParseDict looks a name up as a JSON name first
    return schema


def _field_reader(field_descriptor: Any, message: str, schemas: dict[str, _Schema]) -> _Reader:
    kind: int = field_descriptor.type
    repeated: bool = field_descriptor.is_repeated
    read: _Reader
    if kind == _TYPE.TYPE_MESSAGE:
        held: str = field_descriptor.message_type.full_name
        if held == _KEY_VALUE_NAME and repeated:
            if message == Span.DESCRIPTOR.full_name and field_descriptor.name == "attributes":
                return _json_span_attributes
            return _json_key_values
        if held == _ANY_VALUE_NAME:
            read = _json_any_value
        else:
            read = _message_reader(_schema(field_descriptor.message_type, schemas))
    elif (
        kind == _TYPE.TYPE_BYTES
        and message in _ITEM_MESSAGES
        and (field_descriptor.name in _ID_FIELDS)
    ):
        read = _hex_id
    elif kind in _SCALAR_READERS:
        read = _SCALAR_READERS[kind]
    elif kind in _INTEGER_RANGES:
        read = _integer_reader(*_INTEGER_RANGES[kind])
    elif kind == _TYPE.TYPE_ENUM and not field_descriptor.enum_type.is_closed:
        names = {value.name: value.number for value in field_descriptor.enum_type.values}
        read = _enum_reader(names)
    else:
        raise RuntimeError(f"OTLP JSON: no reader for {message}.{field_descriptor.name}")
    return _repeated(read) if repeated else read


_SCHEMAS: dict[str, _Schema] = {}
_TRACES_REQUEST = _schema(ExportTraceServiceRequest.DESCRIPTOR, _SCHEMAS)
_LOGS_REQUEST = _schema(ExportLogsServiceRequest.DESCRIPTOR, _SCHEMAS)
_KEY_VALUE = _schema(KeyValue.DESCRIPTOR, _SCHEMAS)
_ANY_VALUE = _schema(AnyValue.DESCRIPTOR, _SCHEMAS)


class _JsonStatus(NamedTuple):
    code: int
    message: str = ""


class _JsonEvent(NamedTuple):
    name: str
    attributes: dict[str, Plain]


@dataclass(slots=True, eq=False)
class _JsonSpan:
    """A span from OTLP JSON, under the names of the protobuf Span's fields the mapping reads."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    name: str
    kind: int
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: dict[str, Plain]  # plain values where protobuf has AnyValue bytes
    events: list[_JsonEvent]
    status: _JsonStatus


@dataclass(slots=True, eq=False)
class _JsonLogRecord:
    """A log record from OTLP JSON, likewise (``_log_line`` reads both)."""

    trace_id: bytes
    span_id: bytes
    time_unix_nano: int
    observed_time_unix_nano: int
    severity_number: int
    severity_text: str
    event_name: str
    attributes: dict[str, Plain]
    body: Plain
    has_body: bool


def _json_span(fields: dict[str, Any]) -> _JsonSpan:
    get = fields.get
    return _JsonSpan(
        trace_id=get("trace_id", b""),
        span_id=get("span_id", b""),
        parent_span_id=get("parent_span_id", b""),
        name=get("name", ""),
        kind=get("kind", 0),
        start_time_unix_nano=get("start_time_unix_nano", 0),
        end_time_unix_nano=get("end_time_unix_nano", 0),
        attributes=dict(get("attributes", ())),
        events=[
            _JsonEvent(event.get("name", ""), dict(event.get("attributes", ())))
            for event in get("events", ())
        ],
        status=_JsonStatus(get("status", {}).get("code", 0), get("status", {}).get("message", "")),
    )


def _json_log_record(fields: dict[str, Any]) -> _JsonLogRecord:
    get = fields.get
    return _JsonLogRecord(
        trace_id=get("trace_id", b""),
        span_id=get("span_id", b""),
        time_unix_nano=get("time_unix_nano", 0),
        observed_time_unix_nano=get("observed_time_unix_nano", 0),
        severity_number=get("severity_number", 0),
        severity_text=get("severity_text", ""),
        event_name=get("event_name", ""),
        attributes=dict(get("attributes", ())),
        body=get("body"),
        has_body="body" in fields,
    )


def _json_batches(body: bytes, signal: Signal) -> tuple[list[_Batch], int]:
    """The batches of a JSON request, every message in it checked, and how many items it holds."""
    make: Callable[[dict[str, Any]], Any]
    if signal == "traces":
        request = _json_request(body, _TRACES_REQUEST)
        groups, scopes, items, make = "resource_spans", "scope_spans", "spans", _json_span
    else:
        request = _json_request(body, _LOGS_REQUEST)
        groups, scopes, items, make = "resource_logs", "scope_logs", "log_records", _json_log_record
    batches: list[_Batch] = []
    total = 0
    for group in request.get(groups, ()):
        service = None
        for key, value in group.get("resource", {}).get("attributes", ()):
            if key == "service.name":  # the first one, as _service_name reads it
                service = _plain_text(value)
                break
        for scope in group.get(scopes, ()):
            records = [make(item) for item in scope.get(items, ())]
            total += len(records)
            batches.append((service, scope.get("scope", {}).get("name", ""), records))
    return batches, total


# --- attribute values ---------------------------------------------------------------------------
#
# Every field read on a upb message allocates a Python wrapper (about 0.3 µs each here), so span
# attributes are read from their raw bytes (see _span_attributes_as_map), only the few the
# mapping needs. Log records need all of theirs, and exception events are rare: both read
# the messages through _plain.


def _plain(value: Any) -> Plain:
    """An AnyValue as plain Python (bytes as hex, non-finite floats as text JSON can hold)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        text: str = value.string_value
        return text
    if which == "int_value":
        number: int = value.int_value
        return number
    if which == "bool_value":
        flag: bool = value.bool_value
        return flag
    if which == "double_value":
        return _plain_double(value.double_value)
    if which == "array_value":
        return [_plain(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        raw: bytes = value.bytes_value
        return raw.hex()
    return None


def _plain_double(real: float) -> Plain:
    if math.isfinite(real):
        return real
    return "NaN" if math.isnan(real) else ("Infinity" if real > 0 else "-Infinity")


def _plain_attributes(key_values: Iterable[Any]) -> dict[str, Plain]:
    """A KeyValue list as plain Python (a repeated key keeps its last value, as a map would)."""
    return {kv.key: _plain(kv.value) for kv in key_values}


def _any_value(raw: bytes) -> Any:
    """The AnyValue a span attribute's bytes encode (see ``_span_attributes_as_map``)."""
    value = AnyValue()
    try:
        value.ParseFromString(raw)
    except Exception as exc:  # as in _parse_protobuf: whatever bad bytes raise is a 400
        raise OtlpBadRequest(_reason(f"A span attribute is not a valid AnyValue: {exc}")) from None
    return value


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    """``(value, next position)`` of the varint at ``pos``; ``(-1, ...)`` when it is cut off."""
    result = shift = 0
    end = min(len(raw), pos + 10)
    while pos < end:
        byte = raw[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    return -1, pos


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise OtlpBadRequest("A span attribute holds a string that is not UTF-8") from None


# Wire tags of AnyValue's string_value (field 1, length-delimited), int_value (3, varint) and
# array_value (5, length-delimited), and of ArrayValue's values (1, length-delimited).
_STRING_VALUE_TAG = 0x0A
_INT_VALUE_TAG = 0x18
_ARRAY_VALUE_TAG = 0x2A
_VALUES_TAG = 0x0A


def _text(attrs: _Attributes, key: str) -> str | None:
    """A span's string attribute (an integer given instead as text, as some SDKs send ports and
    status codes); None when absent or empty."""
    # ``in`` then ``[]``: on a upb map ``get`` costs more than both (and ``[]`` alone would
    # insert a missing key).
    if key not in attrs:
        return None
    raw = attrs[key]
    if not isinstance(raw, bytes):  # from OTLP JSON, already plain
        return _plain_text(raw)
    if not raw:
        return None
    # Fast path: the bytes are exactly one string_value field, as every SDK writes a string;
    # most are shorter than 128 bytes, so their length is a single byte.
    if raw[0] == _STRING_VALUE_TAG:
        if len(raw) > 1 and raw[1] < 0x80 and len(raw) == raw[1] + 2:
            try:  # inline rather than _utf8: this line runs a dozen times per span
                return raw[2:].decode("utf-8") or None
            except UnicodeDecodeError:
                pass  # _utf8 below refuses it, with the reason
        length, start = _varint(raw, 1)
        if length >= 0 and start + length == len(raw):
            return _utf8(raw[start:]) or None
    return _plain_text(_plain(_any_value(raw)))


def _integer(attrs: _Attributes, key: str) -> int | None:
    if key not in attrs:
        return None
    raw = attrs[key]
    if not isinstance(raw, bytes):
        return _plain_integer(raw)
    if not raw:
        return None
    if raw[0] == _INT_VALUE_TAG:  # fast path: exactly one int_value field
        number, end = _varint(raw, 1)
        if end == len(raw) and number >= 0:
            number &= (1 << 64) - 1  # int64 on the wire: two's complement in 64 bits
            return number - (1 << 64) if number >= 1 << 63 else number
    return _plain_integer(_plain(_any_value(raw)))


def _header_text(raw: bytes | Plain) -> str:
    """A captured header's value: a string array joined with ", " (HTTP's own list syntax)."""
    if not isinstance(raw, bytes):
        return _header_value(raw)
    strings = _string_array(raw)
    if strings is not None:
        return ", ".join(strings)
    return _header_value(_plain(_any_value(raw)))


def _string_array(raw: bytes) -> list[str] | None:
    """Fast path for header values: the strings of an array_value holding only strings, as
    instrumentations capture headers; None for any other shape (read the slow, general way)."""
    size = len(raw)
    if size < 2 or raw[0] != _ARRAY_VALUE_TAG:
        return None
    # One short value (most headers): array, item and string lengths are single bytes.
    if (
        size >= 6
        and raw[1] == size - 2
        and raw[2] == _VALUES_TAG
        and raw[3] == size - 4
        and raw[4] == _STRING_VALUE_TAG
        and raw[5] == size - 6
    ):
        return [_utf8(raw[6:])]
    length, pos = _varint(raw, 1)
    if length < 0 or pos + length != size:
        return None
    strings = []
    while pos < size:
        if raw[pos] != _VALUES_TAG:
            return None
        item_length, pos = _varint(raw, pos + 1)
        end = pos + item_length
        if item_length < 2 or end > size or raw[pos] != _STRING_VALUE_TAG:
            return None
        text_length, start = _varint(raw, pos + 1)
        if text_length < 0 or start + text_length != end:
            return None
        strings.append(_utf8(raw[start:end]))
        pos = end
    return strings


def _plain_text(value: Plain) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _plain_integer(value: Plain) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and len(text) <= 18:
            return int(text)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _header_value(plain: Plain) -> str:
    if isinstance(plain, list):
        return ", ".join(item if isinstance(item, str) else _json_text(item) for item in plain)
    return plain if isinstance(plain, str) else _json_text(plain)


def _json_text(value: Plain) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _service_name(resource: Any) -> str | None:
    for kv in resource.attributes:
        if kv.key == "service.name":
            return _plain_text(_plain(kv.value))
    return None


def _reason(text: str) -> str:
    return text if len(text) <= _MAX_REASON_CHARS else text[: _MAX_REASON_CHARS - 1] + "…"


def _time(nanos: int) -> datetime:
    # Integer arithmetic: a float of ~1.7e18 ns cannot hold microseconds exactly.
    return _EPOCH + timedelta(microseconds=nanos // 1000)


# --- traces -------------------------------------------------------------------------------------


def decode_traces(body: bytes, encoding: Encoding) -> DecodedTraces:
    """Decode an ExportTraceServiceRequest; raises only ``OtlpError``."""
    batches, total = _batches(body, encoding, "traces")
    result = DecodedTraces(total=total)
    exchanges = result.exchanges
    # Protobuf spans and _JsonSpan alike: the same field names, and attributes that _text,
    # _integer and _header_text read in either form.
    for service, _, spans in batches:
        for span in spans:
            trace_id: bytes = span.trace_id
            span_id: bytes = span.span_id
            parent_span_id: bytes = span.parent_span_id
            _check_span_ids(trace_id, span_id, parent_span_id)
            attrs = span.attributes
            kind: int = span.kind
            if kind in (_SPAN_KIND_SERVER, _SPAN_KIND_CLIENT) and (
                "http.request.method" in attrs or "http.method" in attrs
            ):
                outcome = _exchange(span, attrs, kind, trace_id, span_id, service)
                if isinstance(outcome, HttpExchange):
                    exchanges.append(outcome)
                else:
                    result.rejected.append(outcome)
            # One C-level search over the joined keys, not a Python prefix test per key.
            elif genai.is_genai("\n" + "\n".join(attrs)):
                generation = _generation(span, attrs, trace_id, span_id, parent_span_id)
                if isinstance(generation, Generation):
                    result.generations.append(generation)
                else:
                    result.rejected.append(generation)
            else:
                other = _other_span(span, attrs, kind, trace_id, span_id, service)
                if isinstance(other, SpanRecord):
                    result.spans.append(other)
                else:
                    result.rejected.append(other)
    return result


_SPAN_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_SPAN_STATUSES = {0: "UNSET", 1: "OK", 2: "ERROR"}


def _plain_map(attrs: _Attributes) -> dict[str, Plain]:
    """Every attribute as plain Python (the slow, general way: these spans are few)."""
    return {
        key: _plain(_any_value(raw)) if isinstance(raw, bytes) else raw
        for key, raw in attrs.items()
    }


def _times(span: Any, span_hex: str) -> tuple[int, int] | str:
    start: int = span.start_time_unix_nano
    end: int = span.end_time_unix_nano
    if start == 0:
        return _refusal(span, span_hex, "no start time")
    if end < start:
        return _refusal(span, span_hex, "it ends before it starts")
    return start, end


def _generation(
    span: Any, attrs: _Attributes, trace_id: bytes, span_id: bytes, parent_span_id: bytes
) -> Generation | str:
    span_hex = span_id.hex()
    times = _times(span, span_hex)
    if isinstance(times, str):
        return times
    start, end = times
    events = [
        (
            str(event.name),
            event.attributes
            if isinstance(event.attributes, dict)
            else _plain_attributes(event.attributes),
        )
        for event in span.events
    ]
    message: str = span.status.message
    return genai.generation_of(
        _plain_map(attrs),
        events,
        started_at=_time(start),
        duration_ms=(end - start) / 1e6,
        failed=span.status.code == _STATUS_CODE_ERROR,
        status_message=message or None,
        trace_id=trace_id.hex(),
        span_id=span_hex,
        parent_span_id=parent_span_id.hex() if parent_span_id else None,
        client_id=_client_id(trace_id, span_id, start),
    )


def _other_span(
    span: Any,
    attrs: _Attributes,
    kind: int,
    trace_id: bytes,
    span_id: bytes,
    service: str | None,
) -> SpanRecord | str:
    span_hex = span_id.hex()
    times = _times(span, span_hex)
    if isinstance(times, str):
        return times
    start, end = times
    parent: bytes = span.parent_span_id
    message: str = span.status.message
    return SpanRecord(
        trace_id=trace_id.hex(),
        span_id=span_hex,
        name=str(span.name),
        kind=_SPAN_KINDS.get(kind, "INTERNAL"),
        started_at=_time(start),
        duration_ms=(end - start) / 1e6,
        status=_SPAN_STATUSES.get(span.status.code, "UNSET"),
        status_message=message or None,
        parent_span_id=parent.hex() if parent else None,
        service=service,
        attributes=_plain_map(attrs) or None,
        client_id=_client_id(trace_id, span_id, start),
    )


def _check_span_ids(trace_id: bytes, span_id: bytes, parent_span_id: bytes) -> None:
    if len(trace_id) != _TRACE_ID_BYTES or trace_id == _ZERO_TRACE_ID:
        raise OtlpBadRequest(
            _reason(f"A span has an invalid trace id {trace_id.hex()!r} (16 bytes, not all zero)")
        )
    if len(span_id) != _SPAN_ID_BYTES or span_id == _ZERO_SPAN_ID:
        raise OtlpBadRequest(
            _reason(f"A span has an invalid span id {span_id.hex()!r} (8 bytes, not all zero)")
        )
    if parent_span_id and len(parent_span_id) != _SPAN_ID_BYTES:
        raise OtlpBadRequest(
            _reason(f"A span has an invalid parent span id {parent_span_id.hex()!r} (8 bytes)")
        )


def _client_id(trace_id: bytes, span_id: bytes, start_ns: int) -> str:
    """A UUIDv7 that is the same every time this span arrives: an exporter's retry of a batch
    is then stored once, through the same client-id deduplication the JSON front-ends use.

    Its first 48 bits are the span's start in milliseconds, as in every id LogHarbor makes, and
    the rest come from a hash of the trace and span ids (RFC 9562 lets v7's random bits be any
    unique bits). Time-ordered keys keep inserts at the right edge of the primary-key index:
    hash-only ids scattered them over the whole B-tree, and a bare sqlite3 table took 35k
    rows/s with those against 286k with time-ordered ones (bench/RESULTS.md, 2026-12-04).
    """
    h = hashlib.sha256(trace_id + span_id).hexdigest()
    millis = f"{(start_ns // 1_000_000) & 0xFFFF_FFFF_FFFF:012x}"
    # Version 7 and the RFC 4122 variant, without building bytes and a UUID object per span.
    return f"{millis[:8]}-{millis[8:]}-7{h[:3]}-{_VARIANT_DIGIT[h[3]]}{h[4:7]}-{h[7:19]}"


# The variant's top bits (10) over the low two bits of the hex digit they replace.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _refusal(span: Any, span_hex: str, why: str) -> str:
    name: str = span.name
    return _reason(f"span {span_hex} ({name!r}): {why}")


def _exchange(
    span: Any,
    attrs: _Attributes,
    kind: int,
    trace_id: bytes,
    span_id: bytes,
    service: str | None,
) -> HttpExchange | str:
    """The span as an exchange, or the reason it cannot be one."""
    span_hex = span_id.hex()
    method = (_text(attrs, "http.request.method") or _text(attrs, "http.method") or "").upper()
    if method not in _METHODS:
        if method == "_OTHER":  # semconv's word for a method the instrumentation did not know
            method = _text(attrs, "http.request.method_original") or method
        why = f"HTTP method {method!r} is not one of {', '.join(METHODS)}"
        return _refusal(span, span_hex, why)

    exception = _span_exception(span) if len(span.events) else None
    status = _integer(attrs, "http.response.status_code")
    if status is None:
        status = _integer(attrs, "http.status_code")
    if status is None:
        # A server that failed before answering answered 500 (or dropped the connection, which
        # the client sees as no better); a client that got no response has no status at all.
        span_status: int = span.status.code
        failed = exception is not None or span_status == _STATUS_CODE_ERROR
        if kind == _SPAN_KIND_SERVER and failed:
            status = 500
        else:
            error = _text(attrs, "error.type")
            why = "no HTTP status code" + (f" (error.type {error!r})" if error else "")
            return _refusal(span, span_hex, why)
    if not 100 <= status <= 599:
        return _refusal(span, span_hex, f"HTTP status code {status} is outside 100-599")

    start: int = span.start_time_unix_nano
    end: int = span.end_time_unix_nano
    if start == 0:
        return _refusal(span, span_hex, "no start time")
    if end < start:
        return _refusal(span, span_hex, "it ends before it starts")

    scheme, domain = _origin(attrs, kind == _SPAN_KIND_CLIENT, service)
    pathname, query = _path_and_query(attrs)
    request_headers, response_headers = _headers(attrs)
    return HttpExchange(
        domain=domain,
        pathname=pathname,
        method=method,
        status=status,
        elapsed_ms=(end - start) / 1e6,
        request_headers=request_headers,
        query=_query_dict(query) if query else None,
        response_headers=response_headers,
        protocol=scheme.upper(),
        route=_text(attrs, "http.route"),
        started_at=_time(start),
        user_id=_text(attrs, "user.id") or _text(attrs, "enduser.id"),
        client_id=_client_id(trace_id, span_id, start),
        trace_id=trace_id.hex(),
        span_id=span_hex,
        exception=exception,
    )


# Where each span kind names its host, in order of trust, with the port attribute that goes
# with it. Old-convention server spans take their port from the Host header (``http.host``):
# ``net.host.port`` is the socket's port, which is not the origin's behind a proxy.
_SERVER_HOSTS = (
    ("server.address", "server.port"),
    ("http.host", None),
    ("net.host.name", "net.host.port"),
    ("http.server_name", "net.host.port"),
)
_CLIENT_HOSTS = (
    ("server.address", "server.port"),
    ("net.peer.name", "net.peer.port"),
    ("http.host", None),
)


def _origin(attrs: _Attributes, is_client: bool, service: str | None) -> tuple[str, str]:
    """``(scheme, scheme://host[:port])``; the default port is dropped."""
    scheme = (_text(attrs, "url.scheme") or _text(attrs, "http.scheme") or "").lower()
    host: str | None = None
    port: int | None = None
    url: tuple[str, str, str, str] | None = None
    # A client span's URL is the one it called, so it names the origin best; a server span's
    # attributes come from the Host header the client sent.
    if is_client:
        url = _split_url(_text(attrs, "url.full") or _text(attrs, "http.url"))
        if url is not None and url[1]:
            host, port = _split_host_port(url[1])
    if host is None:
        for host_key, port_key in _CLIENT_HOSTS if is_client else _SERVER_HOSTS:
            text = _text(attrs, host_key)
            if text:
                host, port = _split_host_port(text)
                if port is None and port_key is not None:
                    port = _integer(attrs, port_key)
                break
    if (host is None or not scheme) and url is None:
        url = _split_url(_text(attrs, "url.full") or _text(attrs, "http.url"))
    if url is not None:
        if host is None and url[1]:
            host, port = _split_host_port(url[1])
        scheme = scheme or url[0]
    # WebSocket exchanges are served over the same origin as HTTP(S), as normalize_domain says.
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    if scheme not in ("http", "https"):
        scheme = "http" if port == 80 else "https"
    if not host:
        return scheme, f"{scheme}://{_host_from_service(service)}"
    if ":" in host:  # an IPv6 literal keeps its brackets in an origin
        host = f"[{host}]"
    if port is not None and 0 < port < 65536 and port != (443 if scheme == "https" else 80):
        return scheme, f"{scheme}://{host}:{port}"
    return scheme, f"{scheme}://{host}"


def _split_url(text: str | None) -> tuple[str, str, str, str] | None:
    """``(scheme, host[:port], path, query)`` of a URL attribute, or None when it does not parse."""
    if not text:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    return parts.scheme.lower(), parts.netloc.rpartition("@")[2], parts.path, parts.query


def _split_host_port(text: str) -> tuple[str, int | None]:
    """``host[:port]``, ``[v6]:port`` or a bare IPv6 literal (Python's instrumentation has been
    seen sending ``server.address`` with the port in it)."""
    text = text.strip().lower()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, _port(rest[1:]) if rest.startswith(":") else None
    if text.count(":") == 1:
        host, _, port_text = text.partition(":")
        return host, _port(port_text)
    return text, None


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 5 else None


def _host_from_service(service: str | None) -> str:
    # service.name is free text (the SDK's default is "unknown_service:python"): keep what a
    # host name can hold so that the origin still parses.
    host = re.sub(r"[^a-z0-9.-]+", "-", (service or "").lower()).strip("-.")
    return host or "unknown-service"


def _path_and_query(attrs: _Attributes) -> tuple[str, str]:
    path = _text(attrs, "url.path")
    query = _text(attrs, "url.query")
    full = _text(attrs, "url.full") or _text(attrs, "http.url")
    if path is None:
        target = _text(attrs, "http.target")
        if target is not None and "://" not in target:
            path, _, target_query = target.partition("?")
            query = query or target_query
        else:
            url = _split_url(full or target)
            if url is not None:
                path = url[2]
                query = query or url[3]
    # The Python instrumentation's older attributes put the path alone in http.target and the
    # query only in http.url; the "?" test spares the URL parse to the many without one.
    if not query and full and "?" in full:
        url = _split_url(full)
        if url is not None:
            query = url[3]
    path = (path or "").partition("#")[0]
    if not path.startswith("/"):
        path = "/" + path
    return path, (query or "").lstrip("?")


def _query_dict(query: str) -> dict[str, str | list[str]] | None:
    params: dict[str, str | list[str]] = {}
    pairs: Iterable[tuple[str, str]]
    if "%" in query or "+" in query:
        pairs = parse_qsl(query, keep_blank_values=True)
    else:  # nothing to unquote: what parse_qsl would give, at a fraction of its cost
        pairs = (
            (key, value) for key, _, value in (p.partition("=") for p in query.split("&") if p)
        )
    for key, value in pairs:
        previous = params.get(key)
        if previous is None:
            params[key] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            params[key] = [previous, value]
    return params or None


def _headers(attrs: _Attributes) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    request: dict[str, str] = {}
    response: dict[str, str] = {}
    # One regex pass over the joined keys finds the header attributes (most spans have none)
    # without a Python-level test per attribute.
    keys = "\n" + "\n".join(attrs)
    if ".header." in keys:
        for match in _HEADER_KEY.finditer(keys):
            headers = request if match[1] == "request" else response
            headers[_header_name(match[2])] = _header_text(attrs[match[0][1:]])
    if "user-agent" not in request:
        agent = _text(attrs, "user_agent.original") or _text(attrs, "http.user_agent")
        if agent is not None:
            request["user-agent"] = agent
    return request or None, response or None


def _header_name(name: str) -> str:
    # Python's instrumentation writes ``content_type`` for Content-Type; real header names with
    # underscores are rare enough (proxies drop them) that restoring dashes is the better guess.
    return name.lower().replace("_", "-")


def _span_exception(span: Any) -> ExceptionInfo | None:
    # The last exception event is what ended the span; earlier ones were handled. One that
    # names neither a type nor a message says nothing, so the one before it counts instead.
    for event in reversed(span.events):
        if event.name == "exception":
            attributes = event.attributes  # KeyValues, or plain values from JSON
            attrs = attributes if isinstance(attributes, dict) else _plain_attributes(attributes)
            exception = _exception(
                _plain_text(attrs.get("exception.type")),
                _plain_text(attrs.get("exception.message")),
                _plain_text(attrs.get("exception.stacktrace")),
            )
            if exception is not None:
                return exception
    return None


# --- exceptions ---------------------------------------------------------------------------------


def _exception(
    kind: str | None, message: str | None, stacktrace: str | None
) -> ExceptionInfo | None:
    if kind is None and message is None:
        return None
    return ExceptionInfo(
        type=kind or "Exception",
        message=(message or "")[:MAX_EXCEPTION_MESSAGE_CHARS],
        stacktrace=_tail(stacktrace) if stacktrace else None,
        frames=frames_from_stacktrace(stacktrace) if stacktrace else (),
    )


def _tail(text: str) -> str:
    if len(text) * 4 <= MAX_STACKTRACE_BYTES:  # cannot be over the limit: skip encoding
        return text
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_STACKTRACE_BYTES:
        return text
    # The innermost frames of a Python traceback are at the end: keep the tail.
    return data[-MAX_STACKTRACE_BYTES:].decode("utf-8", "ignore")


_PYTHON_FRAME = re.compile(r'\s*File "(?P<file>[^"]*)", line (?P<line>\d+), in (?P<function>.+)')
_JAVA_FRAME = re.compile(r"\s*at (?P<function>[^\s(]+)\((?P<location>[^()]*)\)\s*")
_NODE_FRAME = re.compile(r"\s*at (?:(?P<function>.+?) \((?P<location>.+)\)|(?P<bare>\S+))\s*")
_NODE_LOCATION = re.compile(r"(?P<file>.+?):(?P<line>\d+)(?::\d+)?")
# A line longer than this is not a frame; bounding it keeps the regexes linear on hostile text.
_MAX_FRAME_LINE = 1000
_TRACEBACK = "Traceback (most recent call last):"


def frames_from_stacktrace(stacktrace: str) -> tuple[Frame, ...]:
    """Frames of a Python, Java or Node.js stack trace, innermost last, at most ``MAX_FRAMES``.

    For a chained Python exception only the last traceback counts (it is the raised one); for
    Java only the frames before the first ``Caused by:`` (the rest belong to the causes).
    """
    start = stacktrace.rfind(_TRACEBACK)
    if start >= 0:
        python = [
            Frame(file=match["file"], line=int(match["line"]), function=match["function"].strip())
            for line in stacktrace[start + len(_TRACEBACK) :].splitlines()
            if len(line) <= _MAX_FRAME_LINE and (match := _PYTHON_FRAME.fullmatch(line))
        ]
        return tuple(python[-MAX_FRAMES:])
    frames: list[Frame] = []
    for line in stacktrace.splitlines():
        if line.startswith("Caused by:") and frames:
            break
        if len(line) > _MAX_FRAME_LINE or not line.lstrip().startswith("at "):
            continue
        frame = _java_frame(line) or _node_frame(line)
        if frame is not None:
            frames.append(frame)
            # Java and Node print innermost first; the innermost are the ones to keep.
            if len(frames) == MAX_FRAMES:
                break
    frames.reverse()
    return tuple(frames)


def _java_frame(line: str) -> Frame | None:
    match = _JAVA_FRAME.fullmatch(line)
    if match is None:
        return None
    # ``java.base/java.lang.Thread.run``: the module prefix is not part of the method name.
    function = match["function"].rpartition("/")[2]
    file, _, line_text = match["location"].partition(":")
    return Frame(file=file, line=int(line_text) if line_text.isdigit() else None, function=function)


def _node_frame(line: str) -> Frame | None:
    match = _NODE_FRAME.fullmatch(line)
    if match is None:
        return None
    location = match["location"] or match["bare"]
    where = _NODE_LOCATION.fullmatch(location)
    function = match["function"] or "<anonymous>"
    if where is None:  # "native", "<anonymous>"
        return Frame(file=location, line=None, function=function)
    return Frame(file=where["file"], line=int(where["line"]), function=function)


# --- logs ---------------------------------------------------------------------------------------


_SEVERITY_TEXT = {
    "WARN": "WARNING",
    "WARNING": "WARNING",
    "ERROR": "FATAL",
    "ERR": "FATAL",
    "FATAL": "FATAL",
    "CRITICAL": "FATAL",
    "CRIT": "FATAL",
    "ALERT": "FATAL",
    "EMERGENCY": "FATAL",
    "EMERG": "FATAL",
    "SEVERE": "FATAL",
    "PANIC": "FATAL",
}


def _level(severity_number: int, severity_text: str) -> str:
    """OTel severity ranges: 1-12 TRACE..INFO, 13-16 WARN, 17-24 ERROR and FATAL; out of range
    or unspecified falls back to the text (``WARN2``, ``error``...), INFO when that says nothing."""
    if 1 <= severity_number <= 12:
        return "INFO"
    if 13 <= severity_number <= 16:
        return "WARNING"
    if 17 <= severity_number <= 24:
        return "FATAL"
    return _SEVERITY_TEXT.get(severity_text.strip().upper().rstrip("0123456789"), "INFO")


def decode_logs(body: bytes, encoding: Encoding) -> DecodedLogs:
    """Decode an ExportLogsServiceRequest; raises only ``OtlpError``."""
    batches, total = _batches(body, encoding, "logs")
    result = DecodedLogs(total=total)
    index = 0
    for service, scope_name, records in batches:
        for record in records:
            event_name = str(record.event_name)
            if event_name.startswith("gen_ai."):
                # GenAI instrumentations send a call's content on its span, as this event, or
                # both; the span is what becomes the LLM call, so the event is not a log line.
                # The details event's content goes to that call (when it names its span).
                result.genai_events += 1
                if event_name == genai.DETAILS_EVENT:
                    details = _details(record, index)
                    if isinstance(details, Generation):
                        result.details.append(details)
                    elif details is not None:
                        result.rejected.append(details)
                index += 1
                continue
            outcome = _log_line(record, index, scope_name, service)
            if isinstance(outcome, LogLine):
                result.lines.append(outcome)
            else:
                result.rejected.append(outcome)
            index += 1
    return result


def _details(record: Any, index: int) -> Generation | str | None:
    """The LLM call a details event describes; None for one outside any span (it names no call
    to add to, and its content alone is not a call)."""
    trace_id = _log_id(record.trace_id, _TRACE_ID_BYTES, "trace id")
    span_id = _log_id(record.span_id, _SPAN_ID_BYTES, "span id")
    if trace_id is None or span_id is None:
        return None
    nanos: int = record.time_unix_nano or record.observed_time_unix_nano
    if nanos == 0:
        return _reason(f"log record {index}: neither time nor observed time is set")
    attributes = (
        record.attributes
        if isinstance(record, _JsonLogRecord)
        else _plain_attributes(record.attributes)
    )
    return genai.details_of(attributes, time=_time(nanos), trace_id=trace_id, span_id=span_id)


def _log_id(value: bytes, size: int, what: str) -> str | None:
    if not value:
        return None
    if len(value) != size:
        raise OtlpBadRequest(
            _reason(f"A log record has an invalid {what} {value.hex()!r} ({size} bytes)")
        )
    # Logs outside any span are allowed; some SDKs send zeros instead of leaving the id empty.
    return None if value == bytes(size) else value.hex()


def _log_line(record: Any, index: int, scope_name: str, service: str | None) -> LogLine | str:
    # Ids first: a malformed one refuses the whole request, whatever else this record holds.
    trace_id = _log_id(record.trace_id, _TRACE_ID_BYTES, "trace id")
    span_id = _log_id(record.span_id, _SPAN_ID_BYTES, "span id")
    nanos: int = record.time_unix_nano or record.observed_time_unix_nano
    if nanos == 0:
        return _reason(f"log record {index}: neither time nor observed time is set")
    attributes: dict[str, Plain]
    if isinstance(record, _JsonLogRecord):  # already plain
        attributes, has_body, body = record.attributes, record.has_body, record.body
    else:
        attributes = _plain_attributes(record.attributes)
        has_body = record.HasField("body")
        body = _plain(record.body) if has_body else None
    get = attributes.get
    if has_body:
        message = body if isinstance(body, str) else _json_text(body)
    else:
        # Events (GenAI's, say) may carry everything in attributes and name themselves instead.
        event_name: str = record.event_name
        message = event_name
    status = _plain_integer(get("http.response.status_code"))
    if status is None:
        status = _plain_integer(get("http.status_code"))
    method = _plain_text(get("http.request.method")) or _plain_text(get("http.method"))
    severity_number: int = record.severity_number
    severity_text: str = record.severity_text
    line = LogLine(
        time=_time(nanos),
        level=_level(severity_number, severity_text),
        message=message,
        route=_plain_text(get("http.route")) or scope_name or service or "/",
        attributes=attributes,
        trace_id=trace_id,
        span_id=span_id,
        method=method.upper() if method else None,
        status=status,
        user_id=_plain_text(get("user.id")) or _plain_text(get("enduser.id")),
        exception=_exception(
            _plain_text(get("exception.type")),
            _plain_text(get("exception.message")),
            _plain_text(get("exception.stacktrace")),
        ),
    )
    if service is not None:
        # The resource's name wins over a record attribute of that name: it is the service's
        # identity, which the record's own attributes cannot change.
        attributes["service.name"] = service
    return line


# --- answers ------------------------------------------------------------------------------------


def rejection_message(reasons: list[str], noun: str, limit: int = 5) -> str:
    """A partial-success ``error_message`` from per-item reasons: the first few, then a count."""
    if not reasons:
        return ""
    shown = "; ".join(reasons[:limit])
    more = len(reasons) - limit
    return f"{len(reasons)} {noun} rejected: {shown}" + (f"; and {more} more" if more > 0 else "")


def encode_export_response(
    signal: Signal, encoding: Encoding, rejected: int, message: str
) -> bytes:
    """The 200 answer, with ``partial_success`` when something was refused or there is a
    message for the client (the spec's way to warn about a request that was still accepted)."""
    if rejected < 0:
        raise ValueError("rejected must not be negative")
    response: Any
    if signal == "traces":
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
    else:
        response = ExportLogsServiceResponse()
        if rejected:
            response.partial_success.rejected_log_records = rejected
    if message:
        response.partial_success.error_message = message
    return _serialize(response, encoding)


# HTTP status → google.rpc.Code, as the codes' documentation pairs them. 413 and 415 have no
# pair: INVALID_ARGUMENT says "do not retry this request as is", which is what both mean.
_GRPC_CODES = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    409: 10,  # ABORTED
    413: 3,
    415: 3,
    429: 8,  # RESOURCE_EXHAUSTED
    499: 1,  # CANCELLED
    500: 13,  # INTERNAL
    501: 12,  # UNIMPLEMENTED
    503: 14,  # UNAVAILABLE
    504: 4,  # DEADLINE_EXCEEDED
}


def encode_status(code_http: int, message: str, encoding: Encoding) -> bytes:
    """An error answer's body: OTLP/HTTP sends a google.rpc.Status with 4xx and 5xx."""
    fallback = 9 if 400 <= code_http < 500 else 2  # FAILED_PRECONDITION / UNKNOWN
    status = status_pb2.Status(code=_GRPC_CODES.get(code_http, fallback), message=message)
    return _serialize(status, encoding)


def _serialize(message: Any, encoding: Encoding) -> bytes:
    if encoding == "protobuf":
        data: bytes = message.SerializeToString()
        return data
    document: dict[str, Any] = json_format.MessageToDict(message)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
