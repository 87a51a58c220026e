"""The ClickHouse record store's promise: an answer means stored, in both stores or neither."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fixtures.database import events_url_for, settings_for
from fixtures.network import free_port
from fixtures.records import body
from fixtures.sources import create_source, ingest_key
from fixtures.spans import chat_span, llm_calls, post_spans, span
from fixtures.users import sign_up
from logharbor.app import create_app
from logharbor.common.ids import new_id
from logharbor.db import tables


@pytest.fixture
def unreachable_events(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app with its events store on a port where nothing listens."""
    settings = settings_for(
        database_url, tmp_path, f"clickhouse://default@127.0.0.1:{free_port()}/gone"
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_ingest_is_a_503_and_writes_nothing_when_clickhouse_is_down(
    unreachable_events: TestClient,
) -> None:
    client = unreachable_events
    user = sign_up(client)
    source = create_source(client, user)
    response = client.post(
        f"/http-traffic-record/{source.id}", json=body(status=500), headers=user.headers
    )
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.read() as conn:
        # Nothing of the record's transaction stayed behind in SQL: no names, rollups,
        # exception groups or alerts for a record that was never stored.
        for table in (
            tables.domains,
            tables.pathnames,
            tables.traffic_rollups,
            tables.exceptions,
            tables.webhook_outbox,
        ):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0, (
                table.name
            )


@pytest.fixture
def events_on_chdb(database_url: str, chdb_directory: Path, tmp_path: Path) -> Iterator[TestClient]:
    """Metadata on the test's database (PostgreSQL too: its advisory locks guard retries),
    events on chDB."""
    settings = settings_for(database_url, tmp_path, events_url_for("chdb", chdb_directory))
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_retry_is_stored_once_whatever_holds_the_metadata(events_on_chdb: TestClient) -> None:
    client = events_on_chdb
    user = sign_up(client)
    source = create_source(client, user)
    record_id = new_id()
    url = f"/http-traffic-record/{source.id}"
    first = client.post(url, json=body(id=record_id), headers=user.headers)
    again = client.post(url, json=body(id=record_id), headers=user.headers)
    batch = client.post(
        f"{url}/batch", json=[body(id=record_id), body(id=record_id)], headers=user.headers
    )
    assert first.status_code == again.status_code == batch.status_code == 201, batch.text
    assert again.json() == first.json()
    assert [item["id"] for item in batch.json()["items"]] == [record_id, record_id]
    listed = client.get(url, headers=user.headers).json()
    assert [item["id"] for item in listed["data"]] == [record_id]


def test_an_export_sent_at_once_many_times_stores_each_span_once(
    events_on_chdb: TestClient,
) -> None:
    # ClickHouse refuses no duplicate: whether the copies meet in one group (staged rows) or
    # in groups one after the other (record_ids, under the source's lock), one is stored.
    client = events_on_chdb
    user = sign_up(client)
    source = create_source(client, user)
    key = ingest_key(client, user, source.id)
    trace_id = os.urandom(16).hex()
    items = (
        span(trace_id=trace_id),
        chat_span(trace_id),
        span(kind=1, trace_id=trace_id, attributes={"db.system": "postgresql"}),
    )
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: post_spans(client, key, *items), range(6)))
    assert answers == [{}] * 6
    assert post_spans(client, key, *items) == {}  # and once more, later
    [call] = llm_calls(client, user, source.id)
    assert call["inputTokens"] == 1000
    waterfall = client.get(f"/traces/{source.id}/{trace_id}", headers=user.headers).json()
    assert sorted(item["kind"] for item in waterfall["items"]) == ["http", "llm", "span"]
    stats = client.get(
        f"/stats/{source.id}/llm",
        params={"startDate": "2026-01-01T00:00:00.000Z", "endDate": "2026-01-02T00:00:00.000Z"},
        headers=user.headers,
    ).json()
    assert stats["totals"]["calls"] == 1  # counted once too
