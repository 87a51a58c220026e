"""GenAI spans over OTLP become LLM calls: costed, tied to their trace and the request they were
made under, attributed only to a prompt of the source's owner (and then one of its logs), and
kept once however often an exporter retries; bad ones are refused alone. Both databases."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import quote

from fastapi.testclient import TestClient

from fixtures.prompts import create_prompt
from fixtures.sources import create_source, ingest_key
from fixtures.spans import START, chat_span, llm_calls, post_spans, span
from fixtures.users import AUser
from logharbor import retention_job
from logharbor.common.timestamps import parse_iso


def test_a_genai_span_is_a_costed_call_in_its_trace_with_the_request_and_other_spans(
    client: TestClient, user: AUser, make_user: Callable[..., AUser]
) -> None:
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    trace_id = os.urandom(16).hex()
    server = span(trace_id=trace_id)
    query = span(kind=1, trace_id=trace_id, attributes={"db.system": "postgresql"})
    query["parentSpanId"] = server["spanId"]
    assert post_spans(client, key, server, chat_span(trace_id, server["spanId"]), query) == {}

    [call] = llm_calls(client, user, sid, traceId=trace_id)
    assert call["provider"] == "openai" and call["requestModel"] == "gpt-4o-mini"
    assert call["responseModel"] == "gpt-4o-mini-2024-07-18"
    assert (call["inputTokens"], call["outputTokens"], call["cachedTokens"]) == (1000, 500, 200)
    # gpt-4o-mini's default price: 800 input at 0.15, 200 cached at 0.075, 500 output at 0.60.
    assert abs(call["cost"] - (800 * 0.15 + 200 * 0.075 + 500 * 0.60) / 1e6) < 1e-12
    assert call["durationMs"] == 840 and call["finishReasons"] == ["stop"]
    assert call["parentSpanId"] == server["spanId"] and call["outputPreview"] == "Hello there"
    detail = client.get(f"/generations/{sid}/{call['id']}", headers=user.headers).json()
    assert detail["parameters"] == {"temperature": "0.2"}
    assert "hunter2" not in json.dumps(detail["inputMessages"])  # masked like bodies

    waterfall = client.get(f"/traces/{sid}/{trace_id}", headers=user.headers).json()
    assert [item["kind"] for item in waterfall["items"]] == ["http", "llm", "span"]
    assert waterfall["items"][2]["parentSpanId"] == server["spanId"]
    # Another user's token sees none of it.
    other = client.get(f"/traces/{sid}/{trace_id}", headers=make_user().headers)
    assert other.status_code == 403


def test_openinference_spans_map_too(client: TestClient, user: AUser) -> None:
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    trace_id = os.urandom(16).hex()
    attributes = {
        "openinference.span.kind": "LLM",
        "llm.provider": "anthropic",
        "llm.model_name": "claude-3-5-haiku-20241022",
        "llm.token_count.prompt": 100,
        "llm.token_count.completion": 10,
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "Hi",
        "output.value": "Hello!",
    }
    post_spans(client, key, span(kind=1, trace_id=trace_id, attributes=attributes))
    [call] = llm_calls(client, user, sid)
    assert call["provider"] == "anthropic" and call["outputPreview"] == "Hello!"
    assert abs(call["cost"] - (100 * 0.80 + 10 * 4.00) / 1e6) < 1e-12
    detail = client.get(f"/generations/{sid}/{call['id']}", headers=user.headers).json()
    assert detail["inputMessages"] == [
        {"role": "user", "parts": [{"type": "text", "content": "Hi"}]}
    ]


def test_a_call_from_a_prompt_is_one_of_its_logs_but_never_of_another_owners_prompt(
    client: TestClient, user: AUser, make_user: Callable[..., AUser]
) -> None:
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    body = {"title": "Greeting", "content": "Say hi to {name}", "model": "gpt-4o-mini"}
    mine = create_prompt(client, user, **body)["_id"]
    stranger = make_user()
    theirs = create_prompt(client, stranger, **body)["_id"]
    trace_id = os.urandom(16).hex()
    post_spans(
        client,
        key,
        chat_span(trace_id, **{"logharbor.prompt.id": mine, "logharbor.prompt.version": 1}),
        chat_span(trace_id, **{"logharbor.prompt.id": theirs}),
        chat_span(trace_id, **{"logharbor.prompt.id": mine, "logharbor.prompt.version": 7}),
    )
    calls = llm_calls(client, user, sid)
    attributed = [(c["promptId"], c["promptVersion"]) for c in calls if c["promptId"]]
    assert attributed == [(mine, 1)] and len(calls) == 3
    [log] = client.get("/logs", params={"promptId": mine}, headers=user.headers).json()
    assert log["output"] == "Hello there" and log["modelUsed"] == "gpt-4o-mini-2024-07-18"
    call = next(c for c in calls if c["promptId"])
    assert log["generation"]["id"] == call["id"] and log["generation"]["inputTokens"] == 1000
    assert log["generation"]["traceId"] == trace_id
    # Scored and annotated like any log.
    log_id = log["_id"]
    response = client.patch(
        f"/logs/{log_id}", json={"score": 9, "notes": "good"}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    assert (response.json()["score"], response.json()["notes"]) == (9, "good")
    assert response.json()["generation"]["id"] == call["id"]
    for bad in ({"score": 11}, {"output": "rewritten"}, {"score": "9"}):
        refused = client.patch(f"/logs/{log_id}", json=bad, headers=user.headers)
        assert refused.status_code == 400, (bad, refused.text)
    refused = client.patch(f"/logs/{log_id}", json={"score": 1}, headers=stranger.headers)
    assert refused.status_code == 403
    # PromptCrafter answers 404 for a prompt without logs: the stranger's prompt got none.
    response = client.get("/logs", params={"promptId": theirs}, headers=stranger.headers)
    assert response.status_code == 404, response.text


def test_a_retried_export_stores_each_call_and_span_once(client: TestClient, user: AUser) -> None:
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    trace_id = os.urandom(16).hex()
    items = (chat_span(trace_id), span(kind=1, trace_id=trace_id, attributes={"x": "y"}))
    for _ in range(2):
        post_spans(client, key, *items)
    assert len(llm_calls(client, user, sid)) == 1
    waterfall = client.get(f"/traces/{sid}/{trace_id}", headers=user.headers).json()
    assert len(waterfall["items"]) == 2


def test_bad_calls_are_refused_alone(
    client: TestClient, user: AUser, rows: Callable[[], dict[str, int]]
) -> None:
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    trace_id = os.urandom(16).hex()
    no_model = span(kind=3, trace_id=trace_id, attributes={"gen_ai.operation.name": "chat"})
    negative = chat_span(trace_id, **{"gen_ai.usage.input_tokens": -5})
    answer = post_spans(client, key, no_model, negative, chat_span(trace_id))
    partial = answer["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "model" in partial["errorMessage"] and "inputTokens" in partial["errorMessage"]
    assert len(llm_calls(client, user, sid)) == 1


def test_prices_are_the_users_own_over_the_defaults(client: TestClient, user: AUser) -> None:
    prices = client.get("/model-prices", headers=user.headers).json()
    assert {"model": "gpt-4o", "source": "default"}.items() <= next(
        p for p in prices if p["model"] == "gpt-4o"
    ).items()
    price = {"inputPerMillion": 1.0, "outputPerMillion": 2.0}
    response = client.put("/model-prices/gpt-4o-mini", json=price, headers=user.headers)
    assert response.status_code == 200, response.text
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    post_spans(client, key, chat_span(os.urandom(16).hex()))
    [call] = llm_calls(client, user, sid)
    assert abs(call["cost"] - (1000 * 1.0 + 500 * 2.0) / 1e6) < 1e-12
    for bad in ({"inputPerMillion": -1, "outputPerMillion": 1}, {"inputPerMillion": 1}):
        response = client.put("/model-prices/x", json=bad, headers=user.headers)
        assert response.status_code == 400, response.text
    assert client.delete("/model-prices/gpt-4o-mini", headers=user.headers).status_code == 204
    assert client.delete("/model-prices/gpt-4o-mini", headers=user.headers).status_code == 404
    assert START  # the shared span factory's clock


def test_oversized_names_and_foreign_ids_are_capped_or_dropped_never_a_500(
    client: TestClient, user: AUser
) -> None:
    """Every value lands within its column on both databases (PostgreSQL refuses an overlong
    varchar, which would have failed the whole export)."""
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    trace_id = os.urandom(16).hex()
    hostile = chat_span(
        trace_id,
        **{
            "gen_ai.provider.name": "p" * 5_000,
            "gen_ai.operation.name": "o" * 5_000,
            "gen_ai.request.model": "m" * 5_000,
            "gen_ai.response.id": "r" * 5_000,
            "logharbor.record.id": "x" * 5_000,
            "logharbor.prompt.id": "prompt" + "9" * 60,
            "logharbor.prompt.version": 2**62,
            "error.type": "E" * 5_000,
        },
    )
    assert post_spans(client, key, hostile) == {}
    [call] = llm_calls(client, user, sid)
    assert len(call["provider"]) == 100 and len(call["operation"]) == 50
    assert len(call["requestModel"]) == 200
    assert call["trafficRecordId"] is None and call["promptId"] is None


def test_model_names_a_database_cannot_hold_are_a_400(client: TestClient, user: AUser) -> None:
    sid = create_source(client, user).id
    price = {"inputPerMillion": 1.0, "outputPerMillion": 2.0}
    for bad in ("nul\x00model", "x" * 201):
        response = client.put(f"/model-prices/{quote(bad)}", json=price, headers=user.headers)
        assert response.status_code == 400, (bad[:10], response.text)
        response = client.get(f"/generations/{sid}", params={"model": bad}, headers=user.headers)
        assert response.status_code == 400, (bad[:10], response.text)


def test_a_log_outlives_its_call_and_a_deleted_prompts_calls_name_no_prompt(
    client: TestClient, user: AUser
) -> None:
    # Prompt logs live with the prompts (scored and annotated there); their calls may live
    # on ClickHouse, with no foreign key between: what is shown is the same on every store.
    sid = create_source(client, user, retentionDays=30).id
    key = ingest_key(client, user, sid)
    body = {"title": "Greeting", "content": "Say hi", "model": "gpt-4o-mini"}
    pruned_prompt = create_prompt(client, user, **body)["_id"]
    deleted_prompt = create_prompt(client, user, **body)["_id"]
    trace_id = os.urandom(16).hex()
    post_spans(
        client,
        key,
        chat_span(trace_id, **{"logharbor.prompt.id": pruned_prompt}),
        chat_span(trace_id, **{"logharbor.prompt.id": deleted_prompt}),
    )
    [log] = client.get("/logs", params={"promptId": pruned_prompt}, headers=user.headers).json()
    client.patch(f"/logs/{log['_id']}", json={"score": 7}, headers=user.headers)

    assert client.delete(f"/prompts/{deleted_prompt}", headers=user.headers).status_code == 204
    orphans = [(c["promptId"], c["promptVersion"]) for c in llm_calls(client, user, sid)]
    assert sorted(orphans, key=lambda pair: str(pair[0])) == [(None, 1), (pruned_prompt, 1)]

    db = client.app.state.db  # type: ignore[attr-defined]
    now = parse_iso("2026-01-01T00:00:00Z") + timedelta(days=45)
    assert retention_job.prune(db, now=now).traces.generations == 2
    assert llm_calls(client, user, sid) == []
    [kept] = client.get("/logs", params={"promptId": pruned_prompt}, headers=user.headers).json()
    assert kept["score"] == 7 and kept["output"] == "Hello there"
    assert "generation" not in kept
    rescored = client.patch(f"/logs/{log['_id']}", json={"score": 3}, headers=user.headers)
    assert rescored.status_code == 200 and "generation" not in rescored.json()
