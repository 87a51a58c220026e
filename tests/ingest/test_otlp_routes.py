"""``POST /v1/traces`` and ``/v1/logs`` on both databases: what is stored, what is answered, and
that bad input of every kind is a 4xx that stores nothing."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from fixtures.sources import Source, ingest_key
from fixtures.spans import JSON, PROTOBUF, START, otlp_attributes, protobuf, span, traces
from fixtures.users import AUser, bearer


def _post(client: TestClient, key: str, body: bytes, headers: dict[str, str]) -> Any:
    return client.post("/v1/traces", content=body, headers={**bearer(key), **headers})


def _records(client: TestClient, user: AUser, sid: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(f"/http-traffic-record/{sid}", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_a_json_span_becomes_a_record_masked_with_its_trace(
    client: TestClient, user: AUser, source: Source
) -> None:
    sid = source.id
    key = ingest_key(client, user, sid)
    trace_id = os.urandom(16).hex()
    body = json.dumps(traces(span(trace_id=trace_id))).encode()
    response = _post(client, key, body, JSON)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}  # nothing refused, nothing to say
    [record] = _records(client, user, sid, traceId=trace_id)
    assert record["method"] == "GET" and record["status"] == 200
    assert record["domain"] == "https://api.example.com"
    assert record["pathname"] == "/orders/7"
    assert record["routeTemplate"] == "/orders/{id}"
    assert record["elapsedTime"] == 12
    assert record["createdAt"] == "2026-01-01T00:00:00.000Z"
    detail = client.get(f"/http-traffic-record/{sid}/{record['id']}", headers=user.headers).json()
    assert detail["traceId"] == trace_id
    assert detail["request"]["queryParams"] == {"expand": "items"}
    assert detail["request"]["headers"]["authorization"] != "Bearer secret-token"
    # Another trace id finds nothing.
    assert _records(client, user, sid, traceId=os.urandom(16).hex()) == []


def test_protobuf_gzip_and_a_retried_batch_is_stored_once(
    client: TestClient, user: AUser, source: Source
) -> None:
    sid = source.id
    key = ingest_key(client, user, sid)
    body = gzip.compress(protobuf(traces(span(), span(kind=3))))
    headers = {**PROTOBUF, "Content-Encoding": "gzip"}
    for _ in range(2):  # an exporter retrying after a lost answer
        response = _post(client, key, body, headers)
        assert response.status_code == 200, response.text
        answer = ExportTraceServiceResponse()
        answer.ParseFromString(response.content)
        assert answer.partial_success.rejected_spans == 0
    assert len(_records(client, user, sid)) == 2


def test_partial_success_names_what_was_refused(
    client: TestClient, user: AUser, source: Source
) -> None:
    sid = source.id
    key = ingest_key(client, user, sid)
    good = span()
    bad_status = span(attributes={"http.method": "GET", "http.status_code": 999})
    internal = span(kind=1, attributes={"http.method": "GET"})
    plain = span(attributes={"db.system": "postgresql"})
    genai = span(kind=3, attributes={"gen_ai.operation.name": "chat"})
    response = _post(
        client, key, json.dumps(traces(good, bad_status, internal, plain, genai)).encode(), JSON
    )
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    # The GenAI span names no model: an LLM call must. The spans without HTTP attributes are
    # kept for the trace's waterfall.
    assert partial["rejectedSpans"] == "2"
    assert "status" in partial["errorMessage"] and "model" in partial["errorMessage"]
    assert len(_records(client, user, sid)) == 1


def test_an_exception_event_is_kept_and_grouped_by_type(
    client: TestClient, user: AUser, source: Source
) -> None:
    sid = source.id
    key = ingest_key(client, user, sid)
    stacktrace = (
        "Traceback (most recent call last):\n"
        '  File "/app/shop/views.py", line 10, in pay\n'
        "    charge()\n"
        '  File "/app/shop/payments.py", line 42, in charge\n'
        "    raise PaymentDeclined(msg)\n"
        "shop.PaymentDeclined: card declined, password=hunter2\n"
    )
    attributes = {
        "http.request.method": "POST",
        "http.response.status_code": 500,
        "url.path": "/pay",
        "server.address": "api.example.com",
        "url.scheme": "https",
    }

    def failing(message: str) -> dict[str, Any]:
        return span(
            attributes={**attributes, "url.path": f"/pay/{os.urandom(4).hex()}"},
            events=[
                {
                    "name": "exception",
                    "timeUnixNano": str(START),
                    "attributes": otlp_attributes(
                        {
                            "exception.type": "shop.PaymentDeclined",
                            "exception.message": message,
                            "exception.stacktrace": stacktrace,
                        }
                    ),
                }
            ],
        )

    body = traces(failing("card 1 declined"), failing("card 2 declined"))
    assert _post(client, key, json.dumps(body).encode(), JSON).status_code == 200
    records = _records(client, user, sid)
    detail = client.get(
        f"/http-traffic-record/{sid}/{records[0]['id']}", headers=user.headers
    ).json()
    exception = detail["exception"]
    assert exception["type"] == "shop.PaymentDeclined"
    assert exception["frames"][-1] == {
        "file": "/app/shop/payments.py",
        "line": 42,
        "function": "charge",
    }
    assert "hunter2" not in exception["stacktrace"]  # masked like every body
    groups = client.get(f"/exceptions/{sid}", headers=user.headers).json()["data"]
    assert len(groups) == 1  # one type, same frames: one group
    assert groups[0]["count"] == 2


def test_logs_become_core_logs_linked_by_trace(
    client: TestClient, user: AUser, source: Source
) -> None:
    sid = source.id
    key = ingest_key(client, user, sid)
    trace_id = os.urandom(16).hex()

    def record(severity: int, text: str, **extra: Any) -> dict[str, Any]:
        return {
            "timeUnixNano": str(START),
            "severityNumber": severity,
            "body": {"stringValue": text},
            "traceId": trace_id,
            "spanId": os.urandom(8).hex(),
            "attributes": otlp_attributes(extra),
        }

    body = {
        "resourceLogs": [
            {
                "resource": {"attributes": otlp_attributes({"service.name": "shop"})},
                "scopeLogs": [
                    {
                        "scope": {"name": "shop.orders"},
                        "logRecords": [
                            record(9, "order looked up"),
                            record(13, "slow order", **{"http.route": "/orders/{id}"}),
                            record(17, "payment failed token=abc123"),
                        ],
                    }
                ],
            }
        ]
    }
    response = client.post(
        "/v1/logs", content=json.dumps(body).encode(), headers={**bearer(key), **JSON}
    )
    assert response.status_code == 200, response.text
    listed = client.get(
        f"/core-log/{sid}", params={"traceId": trace_id}, headers=user.headers
    ).json()["data"]
    by_message = {line["message"]: line for line in listed}
    assert by_message["order looked up"]["level"] == "INFO"
    assert by_message["slow order"]["level"] == "WARNING"
    failed = next(line for line in listed if line["message"].startswith("payment failed"))
    assert failed["level"] == "FATAL"
    assert "abc123" not in failed["message"]
    assert all(line["traceId"] == trace_id and line["status"] is None for line in listed)
    pathnames = client.get(f"/core-pathname/{sid}", headers=user.headers).json()["data"]
    assert {p["value"] for p in pathnames} >= {"/shop.orders", "/orders/{id}"}


def test_credentials(
    client: TestClient, user: AUser, source: Source, make_user: Callable[..., AUser]
) -> None:
    sid = source.id
    body = json.dumps(traces(span())).encode()
    assert client.post("/v1/traces", content=body, headers=JSON).status_code == 401
    no_source = client.post("/v1/traces", content=body, headers={**user.headers, **JSON})
    assert no_source.status_code == 400
    assert "X-Traffic-Source-Id" in no_source.json()["message"]
    named = {**user.headers, **JSON, "X-Traffic-Source-Id": sid}
    assert client.post("/v1/traces", content=body, headers=named).status_code == 200
    stranger = make_user()
    foreign = {**stranger.headers, **JSON, "X-Traffic-Source-Id": sid}
    assert client.post("/v1/traces", content=body, headers=foreign).status_code in (403, 404)
    other = client.post(
        "/traffic-source",
        json={"name": "other", "trafficDomain": "https://other.example.com"},
        headers=user.headers,
    ).json()
    key = ingest_key(client, user, other["id"])
    crossed = {**bearer(key), **JSON, "X-Traffic-Source-Id": sid}
    assert client.post("/v1/traces", content=body, headers=crossed).status_code == 403
    assert len(_records(client, user, sid)) == 1


def test_bad_payloads_are_refused_and_store_nothing(
    client: TestClient,
    user: AUser,
    source: Source,
    rows: Callable[[], dict[str, int]],
) -> None:
    sid = source.id
    key = ingest_key(client, user, sid)
    before = rows()
    good = protobuf(traces(span(), span()))
    many = traces(*(span() for _ in range(10_000)))
    cases: list[tuple[str, bytes, dict[str, str], int]] = [
        ("truncated protobuf", good[: len(good) // 2], PROTOBUF, 400),
        ("garbage protobuf", b"\xff\x00not protobuf at all", PROTOBUF, 400),
        ("not JSON", b"{nope", JSON, 400),
        ("wrong types", json.dumps({"resourceSpans": "yes"}).encode(), JSON, 400),
        (
            "span id of the wrong length",
            json.dumps(traces(span(), span(span_id="abcd"))).encode(),
            JSON,
            400,
        ),
        (
            "trace id of the wrong length",
            json.dumps(traces(span(trace_id="00ff"))).encode(),
            JSON,
            400,
        ),
        ("10,000 spans", json.dumps(many).encode(), JSON, 413),
        ("corrupt gzip", b"\x1f\x8b\x08\x00garbage", {**PROTOBUF, "Content-Encoding": "gzip"}, 400),
        (
            "gzip bomb",
            gzip.compress(b"\x00" * (80 * 1024 * 1024)),
            {**PROTOBUF, "Content-Encoding": "gzip"},
            413,
        ),
        ("another media type", b"x", {"Content-Type": "text/plain"}, 415),
        ("another coding", good, {**PROTOBUF, "Content-Encoding": "br"}, 415),
    ]
    for what, body, headers, status in cases:
        response = _post(client, key, body, headers)
        assert response.status_code == status, (what, response.text)
        if headers.get("Content-Type") == PROTOBUF["Content-Type"]:
            error = status_pb2.Status()
            error.ParseFromString(response.content)
        else:
            error = status_pb2.Status()
            json_format.Parse(response.text, error)
        assert error.message, what
    assert rows() == before


def test_a_saturated_writer_answers_503_with_retry_after(
    client: TestClient, user: AUser, source: Source
) -> None:
    from logharbor.db.writer import GroupCommitWriter

    sid = source.id
    key = ingest_key(client, user, sid)
    app: Any = client.app
    running = app.state.writer
    # A real writer, not started, whose one-place queue is already taken.
    full = GroupCommitWriter(app.state.db, max_queue=1)
    full.submit_nowait(lambda tx: None)
    app.state.writer = full
    try:
        response = _post(client, key, json.dumps(traces(span())).encode(), JSON)
    finally:
        app.state.writer = running
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert json.loads(response.text)["message"]
    assert _records(client, user, sid) == []


def test_the_record_page_shows_the_trace_its_exception_and_its_log_lines(
    client: TestClient, user: AUser, source: Source
) -> None:
    from logharbor.ui.session import COOKIE

    sid = source.id
    key = ingest_key(client, user, sid)
    trace_id = os.urandom(16).hex()
    failing = span(
        trace_id=trace_id,
        attributes={"http.method": "POST", "http.status_code": 500, "http.target": "/pay"},
        events=[
            {
                "name": "exception",
                "attributes": otlp_attributes(
                    {"exception.type": "KeyError", "exception.stacktrace": "Traceback: boom"}
                ),
            }
        ],
    )
    assert _post(client, key, json.dumps(traces(failing)).encode(), JSON).status_code == 200
    line = {
        "timeUnixNano": str(START),
        "severityNumber": 17,
        "body": {"stringValue": "card declined"},
        "traceId": trace_id,
    }
    logs = {"resourceLogs": [{"scopeLogs": [{"logRecords": [line]}]}]}
    response = client.post("/v1/logs", content=json.dumps(logs), headers={**bearer(key), **JSON})
    assert response.status_code == 200, response.text
    [record] = _records(client, user, sid)
    client.cookies.set(COOKIE, user.token)
    page = client.get(f"/ui/sources/{sid}/records/{record['id']}")
    assert page.status_code == 200
    assert trace_id in page.text
    assert "KeyError" in page.text and "Traceback: boom" in page.text
    assert "card declined" in page.text
    exceptions = client.get(f"/ui/sources/{sid}/exceptions")
    assert "Traceback: boom" in exceptions.text
