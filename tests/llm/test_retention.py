"""Retention: a source's LLM calls and other spans go with its records once older than its
retention days; newer ones and other sources' stay. Both databases."""

from __future__ import annotations

import json
import os
from datetime import timedelta

from fastapi.testclient import TestClient

from fixtures import event_rows
from fixtures.sources import create_source, ingest_key
from fixtures.spans import JSON, START, span, traces
from fixtures.users import AUser, bearer
from llm.test_details_events import _event, _post_events
from logharbor import retention_job
from logharbor.common.timestamps import parse_iso

DAY_NS = 86_400 * 1_000_000_000


def _trace(day: int) -> list[dict[str, object]]:
    """An HTTP span, an LLM call and a database span of one trace, ``day`` days after START."""
    trace_id = os.urandom(16).hex()
    server = span(trace_id=trace_id)
    chat = span(
        kind=3,
        trace_id=trace_id,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 5,
        },
    )
    query = span(kind=1, trace_id=trace_id, attributes={"db.system": "postgresql"})
    items = [server, chat, query]
    for item in items:
        for edge in ("startTimeUnixNano", "endTimeUnixNano"):
            item[edge] = str(int(item[edge]) + day * DAY_NS)
    return items


def _post(client: TestClient, key: str, items: list[dict[str, object]]) -> None:
    body = json.dumps(traces(*items)).encode()
    response = client.post("/v1/traces", content=body, headers={**bearer(key), **JSON})
    assert response.status_code == 200 and response.json() == {}, response.text


def _counts(client: TestClient, source_id: str) -> tuple[int, int, int]:
    db = client.app.state.db  # type: ignore[attr-defined]
    return (
        event_rows.count(db, "http_traffic", source_id),
        event_rows.count(db, "generations", source_id),
        event_rows.count(db, "spans", source_id),
    )


def test_llm_calls_and_spans_go_with_their_records_retention(
    client: TestClient, user: AUser
) -> None:
    kept_30_days = create_source(client, user, retentionDays=30).id
    forever = create_source(client, user, name="Forever").id
    for sid in (kept_30_days, forever):
        key = ingest_key(client, user, sid)
        _post(client, key, _trace(0) + _trace(0) + _trace(40))
        assert _counts(client, sid) == (3, 3, 3)

    now = parse_iso("2026-01-01T00:00:00Z") + timedelta(days=45)
    assert START == 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
    db = client.app.state.db  # type: ignore[attr-defined]
    # A batch of 1 makes each table take several batches: a batch boundary loses nothing.
    # A details event whose call never came is kept no longer than a call.
    orphan = _event(os.urandom(16).hex(), os.urandom(8).hex())
    _post_events(client, ingest_key(client, user, kept_30_days), orphan)
    report = retention_job.prune(db, batch_size=1, now=now)
    assert (report.records.traffic, report.traces.generations, report.traces.spans) == (2, 2, 2)
    assert report.traces.details == 1
    assert _counts(client, kept_30_days) == (1, 1, 1)
    assert _counts(client, forever) == (3, 3, 3)
    # What is left is the newer trace, whole.
    [call] = client.get(f"/generations/{kept_30_days}", headers=user.headers).json()["data"]
    assert parse_iso(call["createdAt"]) >= now - timedelta(days=30)


def test_a_deleted_sources_llm_calls_spans_and_figures_go_with_it(
    client: TestClient, user: AUser
) -> None:
    doomed = create_source(client, user).id
    kept = create_source(client, user, name="Kept").id
    for sid in (doomed, kept):
        _post(client, ingest_key(client, user, sid), _trace(0))
    assert client.delete(f"/traffic-source/{doomed}", headers=user.headers).status_code == 204
    db = client.app.state.db  # type: ignore[attr-defined]
    assert _counts(client, doomed) == (0, 0, 0)
    assert event_rows.count(db, "llm_rollups", doomed) == 0
    assert _counts(client, kept) == (1, 1, 1)
    assert event_rows.count(db, "llm_rollups", kept) == 3  # one row a resolution
