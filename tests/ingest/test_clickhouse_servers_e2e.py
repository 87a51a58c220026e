"""LogHarbor with its events on real ClickHouse servers (Debian's 18.16) that the tests start:
one node, and two nodes as a 2-shard cluster behind Distributed tables.

Metadata stays on SQLite. The same SQL the chDB backend runs in-process goes over HTTP here.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from fixtures.network import free_port
from fixtures.serve import start_serve
from fixtures.sources import ingest_key
from fixtures.spans import chat_span, llm_calls, post_spans, span
from fixtures.users import AUser, sign_up
from fixtures.waiting import wait_until
from llm.test_details_events import CONTENT_KEYS, _event, _post_events
from logharbor.app import create_app
from logharbor.common.ids import new_id
from logharbor.db import events_schema, migrate
from logharbor.db.clickhouse import EventsClient
from logharbor.db.engine import make_engine
from logharbor.settings import Settings

_names = itertools.count()


def _record(path: str, status: int = 200, **extra: Any) -> dict[str, Any]:
    return {
        "domainUrl": "https://api.example.com",
        "pathnameUrl": path,
        "method": "get",
        "status": status,
        "elapsedTime": 3.5,
        "requestHeaders": {"accept": "application/json"},
        "queryParams": {"q": "1"},
        "responseHeaders": {},
        "responseBody": {"path": path},
        **extra,
    }


def _app(tmp_path: Path, events_url: str) -> Iterator[TestClient]:
    database = tmp_path / "meta.db"
    engine = make_engine(f"sqlite:///{database}")
    migrate.upgrade(engine)
    engine.dispose()
    events = EventsClient.from_url(events_url)
    try:
        events_schema.upgrade(events)
    finally:
        events.close()
    settings = Settings(
        database_url=f"sqlite:///{database}",
        data_dir=tmp_path / "data",
        secret_key="test-secret-that-is-long-enough-for-hs256",
        events_url=events_url,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _source(client: TestClient, user: AUser, name: str) -> str:
    response = client.post(
        "/traffic-source",
        json={"name": name, "trafficDomain": "https://api.example.com"},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def cluster_client(clickhouse_cluster: Any, tmp_path: Path) -> Iterator[TestClient]:
    yield from _app(tmp_path, clickhouse_cluster.events_url(f"lh{next(_names)}"))


@pytest.fixture
def node_client(clickhouse_node: Any, tmp_path: Path) -> Iterator[TestClient]:
    yield from _app(tmp_path, clickhouse_node.events_url(f"lh{next(_names)}"))


def _ingest_and_read(client: TestClient, sources: int) -> tuple[AUser, list[str]]:
    user = sign_up(client)
    source_ids = [_source(client, user, f"s{n}") for n in range(sources)]
    for n, source_id in enumerate(source_ids):
        batch = [_record(f"/items/{n}/{k}", status=200 if k % 2 else 500) for k in range(6)]
        response = client.post(
            f"/http-traffic-record/{source_id}/batch", json=batch, headers=user.headers
        )
        assert response.status_code == 201, response.text
        listed = client.get(
            f"/http-traffic-record/{source_id}?status=5xx", headers=user.headers
        ).json()
        assert listed["meta"]["totalItems"] == 3
        assert {item["pathname"] for item in listed["data"]} == {
            f"/items/{n}/{k}" for k in (0, 2, 4)
        }
        record = client.get(
            f"/http-traffic-record/{source_id}/{listed['data'][0]['id']}", headers=user.headers
        ).json()
        assert record["response"]["body"] == {"path": listed["data"][0]["pathname"]}
        assert record["request"]["queryParams"] == {"q": "1"}
        # Statistics from the rollups kept on the same servers.
        stats = client.get(
            f"/stats/{source_id}", params={"groupBy": "pathname"}, headers=user.headers
        ).json()
        assert stats["totals"]["count"] == 6 and stats["totals"]["errors"] == 3, stats
        assert len(stats["groups"]) == 6
    return user, source_ids


def test_records_go_in_and_come_out_of_one_node(node_client: TestClient) -> None:
    _ingest_and_read(node_client, sources=2)


def test_a_retry_on_a_real_server_is_stored_once(node_client: TestClient) -> None:
    user = sign_up(node_client)
    source_id = _source(node_client, user, "retries")
    record_id = new_id()
    url = f"/http-traffic-record/{source_id}"
    first = node_client.post(url, json=_record("/once", id=record_id), headers=user.headers)
    again = node_client.post(url, json=_record("/once", id=record_id), headers=user.headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert node_client.get(url, headers=user.headers).json()["meta"]["totalItems"] == 1


def test_the_cluster_spreads_sources_over_both_shards_and_reads_them_back(
    cluster_client: TestClient, clickhouse_cluster: Any
) -> None:
    _user, source_ids = _ingest_and_read(cluster_client, sources=8)
    events: EventsClient = cluster_client.app.state.db.events  # type: ignore[attr-defined]
    per_node = [
        int(node.query(f"SELECT count() FROM {events.database}.http_traffic_local").strip())
        for node in clickhouse_cluster.nodes
    ]
    # Eight sources hashed over two shards: both hold some, none is lost or doubled.
    assert sum(per_node) == 8 * 6
    assert all(count > 0 for count in per_node), per_node
    # A source's rows live on one shard (sharded by source).
    for source_id in source_ids:
        holders = [
            int(
                node.query(
                    f"SELECT count() FROM {events.database}.http_traffic_local "
                    f"WHERE traffic_source_id = '{source_id}'"
                ).strip()
            )
            for node in clickhouse_cluster.nodes
        ]
        assert sorted(holders) == [0, 6], (source_id, holders)


def test_an_otlp_llm_call_goes_in_and_comes_out_of_the_cluster(
    cluster_client: TestClient,
) -> None:
    """A GenAI span with its request's and a database span, exported twice (a retry), then
    its content in a details event: stored once, costed, attributed, filled in by a mutation
    on the shards' local tables, and read back through the Distributed tables."""
    client = cluster_client
    user = sign_up(client)
    source_id = _source(client, user, "llm")
    key = ingest_key(client, user, source_id)
    body = {"title": "Greeting", "content": "Say hi", "model": "gpt-4o-mini"}
    prompt = client.post("/prompts", json=body, headers=user.headers).json()["_id"]
    trace_id = os.urandom(16).hex()
    server = span(trace_id=trace_id)
    chat = chat_span(trace_id, server["spanId"], **{"logharbor.prompt.id": prompt})
    chat["attributes"] = [
        a for a in chat["attributes"] if a["key"] not in CONTENT_KEYS
    ]  # content comes in the event
    query = span(kind=1, trace_id=trace_id, attributes={"db.system": "postgresql"})
    for _ in range(2):
        assert post_spans(client, key, server, chat, query) == {}
    assert _post_events(client, key, _event(trace_id, chat["spanId"])) == {}

    [call] = llm_calls(client, user, source_id)
    assert (call["inputTokens"], call["outputTokens"], call["promptVersion"]) == (1000, 500, 1)
    assert call["cost"] == pytest.approx((800 * 0.15 + 200 * 0.075 + 500 * 0.60) / 1e6)
    assert call["outputPreview"] == "Hello there"
    detail = client.get(f"/generations/{source_id}/{call['id']}", headers=user.headers).json()
    assert detail["outputMessages"][0]["parts"][0]["content"] == "Hello there"
    waterfall = client.get(f"/traces/{source_id}/{trace_id}", headers=user.headers).json()
    assert sorted(item["kind"] for item in waterfall["items"]) == ["http", "llm", "span"]
    [log] = client.get("/logs", params={"promptId": prompt}, headers=user.headers).json()
    assert log["output"] == "Hello there" and log["generation"]["id"] == call["id"]
    scored = client.patch(f"/logs/{log['_id']}", json={"score": 9}, headers=user.headers)
    assert scored.json()["score"] == 9 and scored.json()["generation"]["inputTokens"] == 1000
    stats = client.get(
        f"/stats/{source_id}/llm",
        params={
            "startDate": "2026-01-01T00:00:00.000Z",
            "endDate": "2026-01-01T03:00:00.000Z",
            "groupBy": "promptVersion",
        },
        headers=user.headers,
    ).json()
    assert stats["totals"]["calls"] == 1 and stats["totals"]["inputTokens"] == 1000
    assert stats["groups"][0]["promptVersion"] == 1


def test_upgrade_brings_every_node_to_the_newest_version(clickhouse_cluster: Any) -> None:
    events = EventsClient.from_url(clickhouse_cluster.events_url(f"lh{next(_names)}"))
    try:
        every = [migration.version for migration in events_schema.MIGRATIONS]
        assert events_schema.upgrade(events) == every
        assert events_schema.upgrade(events) == []  # nothing left to do
        assert events_schema.current_versions(events) == [set(every)] * len(
            clickhouse_cluster.nodes
        )
    finally:
        events.close()


def _healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    assert process.poll() is None, log.read_text()
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_a_kill_9_after_the_answer_loses_nothing(clickhouse_node: Any, tmp_path: Path) -> None:
    """Every record acknowledged by ``logharbor serve`` is in ClickHouse after a SIGKILL."""
    events_url = clickhouse_node.events_url(f"lh{next(_names)}")
    port = free_port()
    env = {
        **os.environ,
        "LOGHARBOR_DATABASE_URL": f"sqlite:///{tmp_path / 'meta.db'}",
        "LOGHARBOR_DATA_DIR": str(tmp_path / "data"),
        "LOGHARBOR_EVENTS_URL": events_url,
        "LOGHARBOR_SECRET_KEY": "test-secret-that-is-long-enough-for-hs256",
    }
    log = tmp_path / "serve.log"
    process = start_serve(port, env, log, new_session=True)
    base = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    try:
        wait_until(lambda: _healthy(base, process, log), "logharbor serve to start", limit=60)
        with httpx.Client(base_url=base, timeout=30) as http:
            http.post(
                "/auth/signup",
                json={"name": "K", "email": "k@example.com", "password": "password123"},
            )
            token = http.post(
                "/user/auth", json={"email": "k@example.com", "password": "password123"}
            ).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            source_id = http.post(
                "/traffic-source",
                json={"name": "k", "trafficDomain": "https://api.example.com"},
                headers=headers,
            ).json()["id"]
            for n in range(20):
                batch = [_record(f"/k/{n}/{k}") for k in range(25)]
                answer = http.post(
                    f"/http-traffic-record/{source_id}/batch", json=batch, headers=headers
                )
                assert answer.status_code == 201, answer.text
                acknowledged += [item["id"] for item in answer.json()["items"]]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    database = events_url.rsplit("/", 1)[1]
    stored = set(
        clickhouse_node.nodes[0]
        .query(f"SELECT id FROM {database}.http_traffic FORMAT TabSeparated")
        .split()
    )
    assert len(acknowledged) == 500
    assert set(acknowledged) <= stored
