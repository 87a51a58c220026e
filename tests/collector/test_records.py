"""From a capture to the wire record: URLs, headers, query strings, bodies, masking."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid

from logharbor.collector.records import (
    Body,
    Exchange,
    decode_body,
    header_dict,
    new_record_id,
    query_dict,
    to_record,
)
from logharbor.collector.redaction import DEFAULT_MASKED_KEYS, mask, mask_text, normalize_keys

KEYS = normalize_keys(DEFAULT_MASKED_KEYS)


def body(data: bytes, cap: int = 1024) -> Body:
    captured = Body(cap)
    for start in range(0, len(data), 7):  # arrives in pieces, as over a socket
        captured.add(data[start : start + 7])
    return captured


def test_the_wire_record_of_an_exchange() -> None:
    record = to_record(
        Exchange(
            method="patch",
            scheme="https",
            host="api.example.com:8443",
            path="users/1",
            query=b"a=1&a=2&b=&c=%C3%A9",
            status=204,
            elapsed_ms=1.23456,
            request_headers=[(b"Accept", b"a"), (b"accept", b"b"), (b"X-Api-Key", b"k")],
            response_headers={"Content-Type": "text/plain"},
            route="/users/{id}",
            user_id="u1",
        ),
        KEYS,
    )
    assert uuid.UUID(record.pop("id")).version == 7  # type: ignore[misc]
    # An exchange the app built itself, outside the middleware, is a trace of its own.
    assert re.fullmatch("[0-9a-f]{32}", record.pop("traceId"))  # type: ignore[misc]
    assert re.fullmatch("[0-9a-f]{16}", record.pop("spanId"))  # type: ignore[misc]
    assert record == {
        "domainUrl": "https://api.example.com:8443",
        "pathnameUrl": "/users/1",
        "status": 204,
        "protocol": "https",
        "method": "PATCH",
        "trafficUserId": "u1",
        "elapsedTime": 1.235,
        "requestHeaders": {"accept": "a, b", "x-api-key": "****"},
        "requestBody": None,
        "queryParams": {"a": ["1", "2"], "b": "", "c": "é"},
        "responseHeaders": {"content-type": "text/plain"},
        "responseBody": None,
        "routeTemplate": "/users/{id}",
    }
    json.dumps(record)  # the wire record is plain JSON


def test_the_route_as_pathname() -> None:
    exchange = Exchange("GET", "http", "h", "/users/7", "", 200, 1.0, [], [], route="/users/{id}")
    assert to_record(exchange, KEYS)["pathnameUrl"] == "/users/7"
    assert to_record(exchange, KEYS, route_as_pathname=True)["pathnameUrl"] == "/users/{id}"
    exchange.route = None
    assert to_record(exchange, KEYS, route_as_pathname=True)["pathnameUrl"] == "/users/7"


def test_headers_and_queries() -> None:
    assert header_dict([("Set-Cookie", "a=1"), ("set-cookie", "b=2")]) == {"set-cookie": "a=1, b=2"}
    assert query_dict("") == {}
    assert query_dict("x=1&y=2&x=3&x=4") == {"x": ["1", "3", "4"], "y": "2"}


def test_bodies_by_content_type() -> None:
    json_body = body(b'{"user": "a", "password": "p", "list": [{"token": "t"}]}')
    assert decode_body(json_body, "application/json; charset=utf-8", KEYS) == {
        "user": "a",
        "password": "****",
        "list": [{"token": "****"}],
    }
    assert decode_body(body(b'{"a": 1}'), "application/problem+json", KEYS) == {"a": 1}
    assert decode_body(body(b"not json"), "application/json", KEYS) == "not json"
    form = body(b"name=Ann&password=pw&password=pw2")
    assert decode_body(form, "application/x-www-form-urlencoded", KEYS) == {
        "name": "Ann",
        "password": "****",
    }
    assert decode_body(body("héllo".encode()), "text/plain", KEYS) == "héllo"
    assert decode_body(body(b"<a>x</a>"), "", KEYS) == "<a>x</a>"
    png = body(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert decode_body(png, "image/png", KEYS) == "[image/png body, 264 bytes]"
    assert decode_body(body(bytes(range(128, 256))), "", KEYS) == "[binary body, 128 bytes]"
    assert decode_body(Body(10), "application/json", KEYS) is None
    assert decode_body(None, "application/json", KEYS) is None


def test_a_truncated_body_keeps_its_head_and_still_masks() -> None:
    data = json.dumps({"user": "jane", "password": "hunter2", "padding": "x" * 500}).encode()
    head = decode_body(body(data, cap=60), "application/json", KEYS)
    assert isinstance(head, str)
    assert head.startswith('{"user": "jane", "password": "****"')
    assert "hunter2" not in head
    assert head.endswith(f"... [truncated: {len(data)} bytes in total]")
    # A multi-byte character cut in half by the cap is dropped, not turned into garbage.
    cut = decode_body(body("é".encode() * 10, cap=5), "text/plain", KEYS)
    assert cut == "éé... [truncated: 20 bytes in total]"


def test_mask_and_mask_text() -> None:
    keys = normalize_keys([" Authorization ", "", "API_KEY"])
    assert keys == {"authorization", "api_key"}
    assert mask({"AUTHORIZATION": "x", "Api_Key": None, "n": [{"api_key": 1}]}, keys) == {
        "AUTHORIZATION": "****",
        "Api_Key": None,
        "n": [{"api_key": "****"}],
    }
    assert mask("plain", keys) == "plain"
    text = '{"authorization": "Bearer x\\"y", "api_key": 12, "ok": "authorization"}'
    assert (
        mask_text(text, keys)
        == '{"authorization": "****", "api_key": "****", "ok": "authorization"}'
    )
    assert mask_text("a=1&api_key=zz&my_api_key=keep", keys) == "a=1&api_key=****&my_api_key=keep"
    assert mask_text("nothing here", frozenset()) == "nothing here"
    assert mask_text("api_key=zz&a=1", keys) == "api_key=****&a=1"
    assert mask_text('"api_key":"at the start"', keys) == '"api_key":"****"'
    assert mask_text("Authorization=x; api_key", keys) == "Authorization=****; api_key"


def test_importing_the_collector_pulls_in_nothing_of_the_server() -> None:
    """Monitored apps import the collector: only the standard library (httpx on first send)."""
    code = (
        "import sys, logharbor.collector\n"
        "from logharbor.collector import Collector, LogHarborASGIMiddleware\n"
        "from logharbor.collector import LogHarborWSGIMiddleware\n"
        "heavy = ('logharbor.db', 'logharbor.app', 'logharbor.settings', 'logharbor.traffic',\n"
        "         'sqlalchemy', 'fastapi', 'starlette', 'pydantic', 'alembic',\n"
        "         'httpx', 'requests')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
        "from logharbor.collector import LogHarborTransport\n"
        "print('httpx' in sys.modules, 'sqlalchemy' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["[]", "True False"]


def test_record_ids_are_distinct_time_ordered_uuid7s() -> None:
    ids = [new_record_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:1000]:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, value)
    # The first 48 bits are the millisecond clock: later ids never sort before earlier ones'
    # milliseconds.
    stamps = [int(value.replace("-", "")[:12], 16) for value in ids]
    assert stamps == sorted(stamps)
    assert abs(stamps[-1] - time.time_ns() // 1_000_000) < 60_000
