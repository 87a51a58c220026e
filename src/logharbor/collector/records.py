"""What the collector captures and what it sends.

An ``Exchange`` is the raw capture of one request/response, built on the request path with as
little work as possible (header lists and body chunks are kept as they came). The sender thread
turns it into a ``TrafficRecord`` — the compose body of ``POST /ingest-log`` without
``trafficSourceId`` — decoding, parsing and masking off the request path.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict
from urllib.parse import parse_qsl

from logharbor.collector.exceptions import CapturedException, ExceptionInfo, exception_info
from logharbor.collector.redaction import MASK, mask, mask_text, mentions_any
from logharbor.collector.tracing import new_span_id, new_trace_id

Headers = Iterable[tuple[str | bytes, str | bytes]]


def new_record_id() -> str:
    """A UUIDv7 (time-ordered, as the server's own ids) from the standard library alone.

    The server stores a record sent twice with the same id once, so a batch the collector
    retries after a lost answer is never duplicated.
    """
    millis = (time.time_ns() // 1_000_000) & 0xFFFF_FFFF_FFFF
    # Unique, not secret (as span ids): the process's PRNG, reseeded in a forked child by the
    # random module, costs no system call; an LLM call pays for this id on the app's path.
    noise = random.getrandbits(74)
    # The millisecond stamp, version 7, 12 random bits, the RFC 4122 variant, 62 random bits.
    # Formatted by hand: uuid.UUID() costs several times as much.
    value = (millis << 80) | (0x7 << 76) | ((noise >> 62) << 64) | (0b10 << 62) | noise & _LOW_62
    text = value.to_bytes(16, "big").hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_LOW_62 = (1 << 62) - 1


class TrafficRecord(TypedDict):
    """The wire format: Arkyn's compose body (objects, not JSON text), minus the source id."""

    domainUrl: str
    pathnameUrl: str
    status: int
    protocol: str
    method: str
    trafficUserId: str | None
    elapsedTime: float
    requestHeaders: dict[str, str]
    requestBody: Any
    queryParams: dict[str, Any]
    responseHeaders: dict[str, str]
    responseBody: Any
    # Not part of Arkyn's body (servers ignore unknown keys): the matched route's template.
    routeTemplate: str | None
    id: str  # client-generated UUIDv7: retries are stored once
    # W3C trace context (32 and 16 lower-case hex): the trace the exchange belongs to and its
    # own span in it (see ``logharbor.collector.tracing``).
    traceId: str
    spanId: str
    # Only on a request that ended in a 5xx because the app raised.
    exception: NotRequired[ExceptionInfo]


@dataclass(slots=True)
class Body:
    """The head of a body (up to the cap) and the size that went by."""

    cap: int
    chunks: list[bytes] = field(default_factory=list)
    kept: int = 0
    size: int = 0

    def add(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        room = self.cap - self.kept
        if room > 0:
            piece = chunk if len(chunk) <= room else chunk[:room]
            self.chunks.append(piece)
            self.kept += len(piece)

    @property
    def truncated(self) -> bool:
        return self.size > self.kept

    def data(self) -> bytes:
        return b"".join(self.chunks)


@dataclass(slots=True)
class Exchange:
    """One request the app served or made, as captured on the request path."""

    method: str
    scheme: str
    host: str
    path: str
    query: str | bytes
    status: int
    elapsed_ms: float
    request_headers: Headers | Mapping[str, str]
    response_headers: Headers | Mapping[str, str]
    request_body: Body | None = None
    response_body: Body | None = None
    # The route template when the framework knows it (``/users/{user_id}``).
    route: str | None = None
    user_id: str | None = None
    timestamp: float = field(default_factory=time.time)
    # Set by the middleware and the outbound wrappers; an exchange without them (one built by
    # the app itself) is sent as a trace of its own.
    trace_id: str | None = None
    span_id: str | None = None
    exception: CapturedException | None = None
    # Set when something running under the request asked for its record's id (an LLM call
    # naming the record it belongs to); otherwise the record gets an id when it is sent.
    record_id: str | None = None


def header_dict(
    headers: Headers | Mapping[str, str], keys: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Header pairs as a dict with lower-case names, values of ``keys`` masked.

    Repeated headers are joined with ', '.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        name = (raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name).lower()
        if name in keys:
            out[name] = MASK
            continue
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else str(raw_value)
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def query_dict(query: str | bytes, keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The query string as an object: one value as a string, a repeated key as a list.

    Values of ``keys`` (any case) are masked.
    """
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    if not text:
        return {}
    out: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if keys and key.lower() in keys:
            out[key] = MASK
        elif key not in out:
            out[key] = value
        elif isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] = [out[key], value]
    return out


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _is_text(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return (
        media.startswith("text/")
        or media
        in ("application/xml", "application/javascript", "application/x-www-form-urlencoded")
        or media.endswith("+xml")
    )


def decode_body(body: Body | None, content_type: str, keys: frozenset[str]) -> Any:
    """A captured body as the value to send: parsed and masked JSON, form fields, text or a note.

    Text that cannot be parsed (a truncated JSON head, say) is masked by pattern so that a
    secret in it does not leave the process either.
    """
    if body is None or body.size == 0:
        return None
    data = body.data()
    media = content_type.split(";", 1)[0].strip().lower()
    if not body.truncated:
        if _is_json(content_type):
            try:
                parsed = json.loads(data)
            except ValueError:
                pass
            else:
                # Most bodies name no sensitive key: a substring check spares walking them.
                if keys and mentions_any(data.decode("utf-8", "replace"), keys):
                    return mask(parsed, keys)
                return parsed
        elif media == "application/x-www-form-urlencoded":
            return query_dict(data.decode("utf-8", "replace"), keys)
    if not (_is_json(content_type) or _is_text(content_type) or not media):
        return f"[{media} body, {body.size} bytes]"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(data) - 3:  # not just a character cut in half by the cap
            return f"[{media or 'binary'} body, {body.size} bytes]"
        text = data[: error.start].decode("utf-8")
    text = mask_text(text, keys)
    if body.truncated:
        text += f"... [truncated: {body.size} bytes in total]"
    return text


def to_record(
    exchange: Exchange, keys: frozenset[str], route_as_pathname: bool = False
) -> TrafficRecord:
    """The wire record of an exchange, with every sensitive header, parameter and field masked.

    With ``route_as_pathname`` the route template (when known) is sent as ``pathnameUrl``, as
    Arkyn's own collector does, so that LogHarbor groups records and statistics by route.
    """
    if exchange.trace_id and exchange.span_id:
        trace_id, span_id = exchange.trace_id, exchange.span_id
    else:
        trace_id, span_id = new_trace_id(), new_span_id()
    request_headers = header_dict(exchange.request_headers, keys)
    response_headers = header_dict(exchange.response_headers, keys)
    path = exchange.path or "/"
    if route_as_pathname and exchange.route:
        path = exchange.route
    if not path.startswith("/"):
        path = "/" + path
    record: TrafficRecord = {
        "domainUrl": f"{exchange.scheme}://{exchange.host}",
        "pathnameUrl": path,
        "status": exchange.status,
        "protocol": "https" if exchange.scheme in ("https", "wss") else "http",
        "method": exchange.method.upper(),
        "trafficUserId": exchange.user_id,
        "elapsedTime": round(exchange.elapsed_ms, 3),
        "requestHeaders": request_headers,
        "requestBody": decode_body(
            exchange.request_body, request_headers.get("content-type", ""), keys
        ),
        "queryParams": query_dict(exchange.query, keys),
        "responseHeaders": response_headers,
        "responseBody": decode_body(
            exchange.response_body, response_headers.get("content-type", ""), keys
        ),
        "routeTemplate": exchange.route,
        "id": exchange.record_id or new_record_id(),
        "traceId": trace_id,
        "spanId": span_id,
    }
    if exchange.exception is not None:
        record["exception"] = exception_info(exchange.exception, keys)
    return record
