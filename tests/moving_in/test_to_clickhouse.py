"""`logharbor events copy`: records stored in SQLite or PostgreSQL move to ClickHouse (chDB here)
and read back the same; a second run copies nothing; ``--delete-copied`` frees the SQL tables."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table, func, select
from typer.testing import CliRunner

from fixtures.database import settings_for
from fixtures.records import compose
from fixtures.sources import create_source, ingest_key
from fixtures.spans import chat_span, post_spans, span
from fixtures.users import AUser, sign_up
from logharbor.app import create_app
from logharbor.cli import app as cli
from logharbor.db import tables
from logharbor.settings import Settings

runner = CliRunner()
_names = itertools.count()


def _reads(client: TestClient, user: AUser, source_id: str, record_id: str) -> dict[str, Any]:
    """What a user sees of the source's records, core logs and one record."""
    seen = {}
    for path in (
        f"/http-traffic-record/{source_id}?sort=createdAt&sortDirection=asc",
        f"/http-traffic-record/{source_id}?status=5xx",
        f"/http-traffic/{source_id}",
        f"/core-log/{source_id}",
        f"/http-traffic-record/{source_id}/{record_id}",
    ):
        response = client.get(path, headers=user.headers)
        assert response.status_code == 200, (path, response.text)
        seen[path] = response.json()
    return seen


def _stats(client: TestClient, user: AUser, source_id: str) -> dict[str, Any]:
    response = client.get(
        f"/stats/{source_id}", params={"groupBy": "pathname"}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # Totals and groups: the range itself follows the clock (the last day, by default).
    return {"totals": body["totals"], "groups": body["groups"]}


def _sql_rows(settings: Settings, *counted: Table) -> int:
    """Rows of ``counted`` (records and core logs by default) left in the SQL database."""
    from logharbor.db.engine import make_engine

    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            return sum(
                int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for table in counted or (tables.http_traffic, tables.core_logs)
            )
    finally:
        engine.dispose()


def _copy(monkeypatch: pytest.MonkeyPatch, settings: Settings, *extra: str) -> str:
    monkeypatch.setenv("LOGHARBOR_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LOGHARBOR_EVENTS_URL", settings.events_url)
    monkeypatch.setenv("LOGHARBOR_DATA_DIR", str(settings.data_dir))
    result = runner.invoke(cli, ["events", "copy", *extra])
    assert result.exit_code == 0, result.output
    return result.output


def test_records_moved_to_clickhouse_read_back_the_same(
    database_url: str,
    tmp_path: Path,
    chdb_directory: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    on_sql = settings_for(database_url, tmp_path)
    with TestClient(create_app(on_sql)) as client:
        user = sign_up(client)
        source = create_source(client, user)
        records = [
            compose(client, user.headers, source.id, status=status, pathnameUrl=f"/p/{n}")
            for n, status in enumerate((200, 500, 404, 503))
        ]
        route = client.post(
            f"/core-pathname/{source.id}", json={"value": "/u/:id"}, headers=user.headers
        ).json()
        log = client.post(
            f"/core-log/{source.id}",
            json={"status": 500, "method": "GET", "elapsedTime": 2, "corePathnameId": route["id"]},
            headers=user.headers,
        )
        assert log.status_code == 201, log.text
        before = _reads(client, user, source.id, records[1]["id"])
        stats_before = _stats(client, user, source.id)

    on_events = settings_for(
        database_url, tmp_path, f"chdb:///{chdb_directory}/moved{next(_names)}"
    )
    assert "copied 4 traffic records and 1 core logs" in _copy(monkeypatch, on_events)
    assert "copied 0 traffic records and 0 core logs" in _copy(monkeypatch, on_events)
    assert _sql_rows(on_sql) == 5  # kept unless asked

    with TestClient(create_app(on_events)) as client:
        assert _reads(client, user, source.id, records[1]["id"]) == before
        # The statistics moved with them, once: a second copy added nothing.
        assert _stats(client, user, source.id) == stats_before
        assert stats_before["totals"]["count"] == 4

    assert "(5 were there already)" in _copy(monkeypatch, on_events, "--delete-copied")
    assert _sql_rows(on_sql) == 0
    with TestClient(create_app(on_events)) as client:
        assert _reads(client, user, source.id, records[1]["id"]) == before


def test_copy_without_an_events_store_says_what_is_missing(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGHARBOR_DATABASE_URL", database_url)
    monkeypatch.delenv("LOGHARBOR_EVENTS_URL", raising=False)
    result = runner.invoke(cli, ["events", "copy"])
    assert result.exit_code == 1
    assert "LOGHARBOR_EVENTS_URL" in result.output


def _llm_reads(
    client: TestClient, user: AUser, source_id: str, trace_id: str, prompt_id: str
) -> dict[str, Any]:
    """What a user sees of the source's LLM calls: lists, one call, the trace's waterfall,
    the prompt's logs (scored) and the token and cost statistics."""
    [call] = client.get(
        f"/generations/{source_id}", params={"traceId": trace_id}, headers=user.headers
    ).json()["data"]
    seen = {}
    for path, params in (
        (f"/generations/{source_id}", {}),
        (f"/generations/{source_id}", {"model": "gpt-4o-mini", "promptId": prompt_id}),
        (f"/generations/{source_id}/{call['id']}", {}),
        (f"/traces/{source_id}/{trace_id}", {}),
        ("/logs", {"promptId": prompt_id}),
        (f"/stats/{source_id}/llm", {**LLM_RANGE, "groupBy": "route"}),
        (f"/stats/{source_id}/llm", {**LLM_RANGE, "groupBy": "promptVersion"}),
    ):
        response = client.get(path, params=params, headers=user.headers)
        assert response.status_code == 200, (path, response.text)
        seen[path + str(sorted(params.items()))] = response.json()
    return seen


LLM_RANGE = {"startDate": "2026-01-01T00:00:00.000Z", "endDate": "2026-01-01T03:00:00.000Z"}


def test_llm_calls_and_spans_moved_to_clickhouse_read_back_the_same(
    database_url: str,
    tmp_path: Path,
    chdb_directory: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    on_sql = settings_for(database_url, tmp_path)
    trace_id = os.urandom(16).hex()
    with TestClient(create_app(on_sql)) as client:
        user = sign_up(client)
        source = create_source(client, user)
        key = ingest_key(client, user, source.id)
        body = {"title": "Greeting", "content": "Say hi", "model": "gpt-4o-mini"}
        prompt = client.post("/prompts", json=body, headers=user.headers).json()["_id"]
        server = span(trace_id=trace_id)
        chat = chat_span(trace_id, server["spanId"], **{"logharbor.prompt.id": prompt})
        query = span(kind=1, trace_id=trace_id, attributes={"db.system": "postgresql"})
        assert post_spans(client, key, server, chat, query) == {}
        [log] = client.get("/logs", params={"promptId": prompt}, headers=user.headers).json()
        scored = client.patch(
            f"/logs/{log['_id']}", json={"score": 8, "notes": "good"}, headers=user.headers
        )
        assert scored.status_code == 200, scored.text
        before = _llm_reads(client, user, source.id, trace_id, prompt)
    assert before["/logs[('promptId', '" + prompt + "')]"][0]["generation"]["inputTokens"] == 1000

    on_events = settings_for(
        database_url, tmp_path, f"chdb:///{chdb_directory}/moved{next(_names)}"
    )
    output = _copy(monkeypatch, on_events)
    assert "copied 1 LLM calls and 1 other spans" in output
    assert "copied 0 LLM calls and 0 other spans" in _copy(monkeypatch, on_events)
    with TestClient(create_app(on_events)) as client:
        assert _llm_reads(client, user, source.id, trace_id, prompt) == before

    _copy(monkeypatch, on_events, "--delete-copied")
    assert _sql_rows(on_sql, tables.generations, tables.spans, tables.llm_rollups) == 0
    with TestClient(create_app(on_events)) as client:
        assert _llm_reads(client, user, source.id, trace_id, prompt) == before
