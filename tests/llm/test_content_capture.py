"""A source can turn off the capture of LLM content: its calls are then stored with their model,
tokens, cost and timing but without messages, system instructions or output preview (nor the
prompt log's output). On by default; only the owner changes it. Both databases."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from fixtures.prompts import create_prompt
from fixtures.sources import create_source, ingest_key
from fixtures.spans import chat_span, llm_calls, post_spans
from fixtures.users import AUser

SYSTEM = {"gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief"}])}


def _set(client: TestClient, user: AUser, sid: str, body: dict[str, Any]) -> Any:
    return client.put(f"/traffic-source/{sid}", json=body, headers=user.headers)


def _stored(client: TestClient, user: AUser, sid: str, key: str, prompt: str) -> dict[str, Any]:
    trace_id = os.urandom(16).hex()
    post_spans(client, key, chat_span(trace_id, **{"logharbor.prompt.id": prompt}, **SYSTEM))
    [call] = llm_calls(client, user, sid, traceId=trace_id)
    detail: dict[str, Any] = client.get(
        f"/generations/{sid}/{call['id']}", headers=user.headers
    ).json()
    return detail


def test_content_is_kept_by_default_and_dropped_once_a_source_turns_it_off(
    client: TestClient, user: AUser
) -> None:
    sid = create_source(client, user).id
    shown = client.get(f"/traffic-source/{sid}", headers=user.headers).json()
    assert shown["captureLlmContent"] is True
    key = ingest_key(client, user, sid)
    greeting = {"title": "Greeting", "content": "Say hi", "model": "gpt-4o-mini"}
    prompt = create_prompt(client, user, **greeting)["_id"]

    kept = _stored(client, user, sid, key, prompt)
    assert kept["outputPreview"] == "Hello there"
    assert kept["inputMessages"] and kept["outputMessages"] and kept["systemInstructions"]

    answer = _set(client, user, sid, {"captureLlmContent": False})
    assert answer.status_code == 200 and answer.json()["captureLlmContent"] is False, answer.text
    dropped = _stored(client, user, sid, key, prompt)
    assert (dropped["inputMessages"], dropped["outputMessages"]) == (None, None)
    assert (dropped["systemInstructions"], dropped["outputPreview"]) == (None, None)
    # The numbers stay: tokens, cost, model, timing.
    assert (dropped["inputTokens"], dropped["outputTokens"]) == (1000, 500)
    assert dropped["cost"] == kept["cost"] and dropped["requestModel"] == "gpt-4o-mini"
    logs = client.get("/logs", params={"promptId": prompt}, headers=user.headers).json()
    assert sorted(log["output"] for log in logs) == ["", "Hello there"]
    assert "Hello there" not in json.dumps(llm_calls(client, user, sid, traceId=dropped["traceId"]))

    # Other settings leave it as it is; turning it on again keeps content again.
    renamed = _set(client, user, sid, {"name": "Renamed"})
    assert renamed.json()["captureLlmContent"] is False
    assert _set(client, user, sid, {"captureLlmContent": True}).json()["captureLlmContent"]
    assert _stored(client, user, sid, key, prompt)["outputPreview"] == "Hello there"


def test_a_bad_value_or_a_viewer_cannot_change_it(
    client: TestClient, user: AUser, make_user: Callable[..., AUser]
) -> None:
    sid = create_source(client, user).id
    bad = _set(client, user, sid, {"captureLlmContent": "sometimes"})
    assert bad.status_code == 400 and "captureLlmContent" in bad.json()["fieldErrors"], bad.text
    viewer = make_user()
    shared = client.post(
        f"/traffic-source/{sid}/shares", json={"email": viewer.email}, headers=user.headers
    )
    assert shared.status_code == 201, shared.text
    refused = _set(client, viewer, sid, {"captureLlmContent": False})
    assert refused.status_code == 403
    got = client.get(f"/traffic-source/{sid}", headers=user.headers).json()
    assert got["captureLlmContent"] is True
