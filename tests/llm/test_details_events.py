"""A ``gen_ai.client.inference.operation.details`` log event carries an LLM call's content when
the instrumentation keeps it off the span (``EVENT_ONLY``). Span and event come in separate
exports (``/v1/traces``, ``/v1/logs``), in either order: the content ends up on the call of the
same trace and span id, masked, once however often either is retried. Both databases."""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fixtures.sources import create_source, ingest_key
from fixtures.spans import JSON, START, chat_span, llm_calls, post_spans
from fixtures.users import AUser, bearer
from logharbor.db.engine import make_engine
from logharbor.db.tables import generation_details

DETAILS = "gen_ai.client.inference.operation.details"
INPUT = [{"role": "user", "parts": [{"type": "text", "content": "password=hunter2 hi"}]}]
OUTPUT = [
    {
        "role": "assistant",
        "parts": [{"type": "text", "content": "Hello there"}],
        "finish_reason": "stop",
    }
]
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages")


def _value(value: Any) -> dict[str, Any]:
    """OTLP's AnyValue, structured values included (events carry messages as such)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_value(item) for item in value]}}
    if isinstance(value, dict):
        return {
            "kvlistValue": {"values": [{"key": k, "value": _value(v)} for k, v in value.items()]}
        }
    return {"stringValue": value}


def _event(trace_id: str, span_id: str, **extra: Any) -> dict[str, Any]:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 500,
        "gen_ai.input.messages": INPUT,
        "gen_ai.output.messages": OUTPUT,
        "gen_ai.system_instructions": [{"type": "text", "content": "Be brief"}],
        **extra,
    }
    return {
        "timeUnixNano": str(START + 840_000_000),
        "eventName": DETAILS,
        "traceId": trace_id,
        "spanId": span_id,
        "attributes": [{"key": k, "value": _value(v)} for k, v in attributes.items()],
    }


def _post_events(client: TestClient, key: str, *events: dict[str, Any]) -> dict[str, Any]:
    body = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": _value("shop")}]},
                "scopeLogs": [{"scope": {"name": "openai-v2"}, "logRecords": list(events)}],
            }
        ]
    }
    response = client.post(
        "/v1/logs", content=json.dumps(body).encode(), headers={**bearer(key), **JSON}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _span_without_content(trace_id: str, **extra: Any) -> dict[str, Any]:
    item = chat_span(trace_id, **extra)
    item["attributes"] = [a for a in item["attributes"] if a["key"] not in CONTENT_KEYS]
    return item


def _detail(client: TestClient, user: AUser, sid: str, trace_id: str) -> dict[str, Any]:
    [call] = llm_calls(client, user, sid, traceId=trace_id)
    response = client.get(f"/generations/{sid}/{call['id']}", headers=user.headers)
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def _waiting(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(generation_details)).scalar_one()
            )
    finally:
        engine.dispose()


def _assert_content(detail: dict[str, Any]) -> None:
    assert detail["inputMessages"] == [
        {"role": "user", "parts": [{"type": "text", "content": "password=**** hi"}]}
    ]
    assert detail["outputMessages"] == OUTPUT
    assert detail["systemInstructions"] == [{"type": "text", "content": "Be brief"}]
    assert detail["outputPreview"] == "Hello there"


def test_a_details_event_after_its_span_fills_in_the_calls_content(
    client: TestClient, user: AUser, database_url: str
) -> None:
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    body = {"title": "Greeting", "content": "Say hi", "model": "gpt-4o-mini"}
    prompt = client.post("/prompts", json=body, headers=user.headers).json()["_id"]
    trace_id = os.urandom(16).hex()
    item = _span_without_content(trace_id, **{"logharbor.prompt.id": prompt})
    post_spans(client, key, item)
    before = _detail(client, user, sid, trace_id)
    assert before["inputMessages"] is None and before["outputPreview"] is None
    [log] = client.get("/logs", params={"promptId": prompt}, headers=user.headers).json()
    assert log["output"] == ""

    for _ in range(2):  # the exporter's retry changes nothing
        assert _post_events(client, key, _event(trace_id, item["spanId"])) == {}
    after = _detail(client, user, sid, trace_id)
    _assert_content(after)
    # The span's own figures stay as they were counted.
    assert (after["inputTokens"], after["cost"]) == (before["inputTokens"], before["cost"])
    [log] = client.get("/logs", params={"promptId": prompt}, headers=user.headers).json()
    assert log["output"] == "Hello there"
    assert len(llm_calls(client, user, sid)) == 1 and _waiting(database_url) == 0
    # Not a log line of its own.
    lines = client.get(f"/core-log/{sid}", params={"traceId": trace_id}, headers=user.headers)
    assert lines.json()["data"] == []


def test_a_details_event_before_its_span_waits_and_the_span_takes_it(
    client: TestClient, user: AUser, database_url: str
) -> None:
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    trace_id = os.urandom(16).hex()
    item = _span_without_content(trace_id)
    # Usage only on the event: the call is costed with it, as the span had said it.
    tokens = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")
    tokens += ("gen_ai.usage.cache_read.input_tokens",)
    item["attributes"] = [a for a in item["attributes"] if a["key"] not in tokens]
    event = _event(trace_id, item["spanId"])
    for _ in range(2):
        assert _post_events(client, key, event) == {}
    assert llm_calls(client, user, sid) == [] and _waiting(database_url) == 1

    for _ in range(2):
        post_spans(client, key, item)
    detail = _detail(client, user, sid, trace_id)
    _assert_content(detail)
    assert (detail["inputTokens"], detail["outputTokens"]) == (1000, 500)
    assert detail["cost"] == (1000 * 0.15 + 500 * 0.60) / 1e6
    assert detail["durationMs"] == 840
    assert _waiting(database_url) == 0
    # The event retried after its span found the call whole: nothing changes or waits.
    _post_events(client, key, event)
    assert _detail(client, user, sid, trace_id) == detail and _waiting(database_url) == 0


def test_span_and_event_in_one_export_each_at_the_same_time_meet(
    client: TestClient, user: AUser, database_url: str
) -> None:
    # Several calls, their events in one export, their spans in another: each meets its own.
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    trace_id = os.urandom(16).hex()
    spans = [_span_without_content(trace_id) for _ in range(3)]
    post_spans(client, key, spans[0])
    _post_events(client, key, *(_event(trace_id, s["spanId"]) for s in spans))
    assert _waiting(database_url) == 2
    post_spans(client, key, *spans[1:])
    calls = llm_calls(client, user, sid, traceId=trace_id)
    assert len(calls) == 3 and _waiting(database_url) == 0
    for call in calls:
        assert call["outputPreview"] == "Hello there"


def test_a_source_without_content_keeps_no_content_from_events(
    client: TestClient, user: AUser
) -> None:
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    response = client.put(
        f"/traffic-source/{sid}", json={"captureLlmContent": False}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    first, second = os.urandom(16).hex(), os.urandom(16).hex()
    early = _span_without_content(first)
    late = _span_without_content(second)
    post_spans(client, key, early)
    _post_events(client, key, _event(first, early["spanId"]), _event(second, late["spanId"]))
    post_spans(client, key, late)
    for trace_id in (first, second):
        detail = _detail(client, user, sid, trace_id)
        assert detail["inputMessages"] is None and detail["outputMessages"] is None
        assert detail["outputPreview"] is None and detail["systemInstructions"] is None


def test_details_events_outside_a_span_or_malformed_store_nothing(
    client: TestClient, user: AUser, database_url: str
) -> None:
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    orphan = _event(os.urandom(16).hex(), os.urandom(8).hex())
    del orphan["traceId"], orphan["spanId"]
    bad = _event(os.urandom(16).hex(), os.urandom(8).hex())
    bad["timeUnixNano"] = "0"
    answer = _post_events(client, key, orphan, bad)
    assert answer["partialSuccess"]["rejectedLogRecords"] == "1", answer
    assert "neither time nor observed time" in answer["partialSuccess"]["errorMessage"]
    assert _waiting(database_url) == 0
    assert client.get(f"/core-log/{sid}", headers=user.headers).json()["data"] == []
