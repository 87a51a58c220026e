"""The ClickHouse test servers and deploy/clickhouse's config: what the events store relies on.

Plain HTTP (httpx) against Debian's clickhouse-server 18.16, as LogHarbor's client speaks it.
Each test works in a database of its own, as the servers live for the whole session.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from clickhouse_servers import (
    CLUSTER,
    ClickHouseError,
    Servers,
    replicated_servers,
    start_servers,
)

SYNC = {"insert_distributed_sync": "1"}


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database on every node of the servers the test uses; dropped after."""
    servers: Servers = request.getfixturevalue(request.param)
    name = f"t_{uuid.uuid4().hex[:12]}"
    for node in servers.nodes:
        node.query(f"CREATE DATABASE {name}")
    yield name
    for node in servers.nodes:
        node.query(f"DROP DATABASE IF EXISTS {name}")


def rows_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


def create_sharded_table(servers: Servers, database: str) -> None:
    """The events layout: MergeTree ``records_local`` on each node, Distributed ``records``."""
    for node in servers.nodes:
        node.query(
            f"CREATE TABLE {database}.records_local (source_id String, ts DateTime('UTC'), "
            "id UUID, status UInt16) ENGINE = MergeTree PARTITION BY toYYYYMM(ts) "
            "ORDER BY (source_id, ts, id)"
        )
        node.query(
            f"CREATE TABLE {database}.records AS {database}.records_local ENGINE = "
            f"Distributed({CLUSTER}, {database}, records_local, cityHash64(source_id))"
        )


def make_rows(sources: int, per_source: int, month: str = "2026-01") -> list[dict[str, Any]]:
    return [
        {
            "source_id": f"source-{s}",
            "ts": f"{month}-{1 + r % 28:02d} 12:00:00",
            "id": str(uuid.uuid4()),
            "status": 200 + r,
        }
        for s in range(sources)
        for r in range(per_source)
    ]


def json_each_row(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)


def by_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: str(row["id"]))


def test_a_single_node_answers_over_http_on_loopback(clickhouse_node: Servers) -> None:
    (node,) = clickhouse_node.nodes
    answer = httpx.get(node.http_url, params={"query": "SELECT version(), 1 + 1"})
    assert answer.status_code == 200, answer.text
    version, two = answer.text.strip().split("\t")
    assert version.split(".")[0].isdigit() and two == "2"
    assert node.http_url.startswith("http://127.0.0.1:")
    assert clickhouse_node.cluster is None
    assert node.query(f"SELECT count() FROM system.clusters WHERE cluster = '{CLUSTER}'") == "0\n"
    assert clickhouse_node.events_url("logharbor") == (
        f"clickhouse://default@127.0.0.1:{node.http_port}/logharbor"
    )


def test_a_refused_query_raises_with_the_servers_reason(clickhouse_node: Servers) -> None:
    (node,) = clickhouse_node.nodes
    with pytest.raises(ClickHouseError, match="Unknown setting no_such_setting"):
        node.query("SELECT 1", settings={"no_such_setting": "1"})


def test_the_cluster_has_one_shard_per_node_on_every_node(clickhouse_cluster: Servers) -> None:
    expected = [[i + 1, node.tcp_port] for i, node in enumerate(clickhouse_cluster.nodes)]
    for own, node in enumerate(clickhouse_cluster.nodes):
        shards = rows_of(
            node.query(
                "SELECT shard_num, port, is_local FROM system.clusters "
                f"WHERE cluster = '{CLUSTER}' ORDER BY shard_num FORMAT JSONEachRow"
            )
        )
        assert [[s["shard_num"], s["port"]] for s in shards] == expected
        # Each node must see itself as the local shard, or its writes would loop over TCP.
        assert [s["is_local"] for s in shards] == [int(i == own) for i in range(len(shards))]
    hosts = ",".join(f"127.0.0.1:{n.http_port}" for n in clickhouse_cluster.nodes)
    assert clickhouse_cluster.events_url("lh", password="p w") == (
        f"clickhouse://default:p%20w@{hosts}/lh?cluster={CLUSTER}"
    )


@pytest.mark.parametrize("database", ["clickhouse_cluster"], indirect=True)
def test_a_distributed_insert_spreads_rows_over_both_shards_by_source(
    clickhouse_cluster: Servers, database: str
) -> None:
    create_sharded_table(clickhouse_cluster, database)
    first, second = clickhouse_cluster.nodes
    rows = make_rows(sources=20, per_source=5)

    # One multi-row JSONEachRow insert; the setting makes it return only once every shard has
    # its rows (18.16 knows it, as current servers do), so the counts below need no waiting.
    first.query(f"INSERT INTO {database}.records FORMAT JSONEachRow", json_each_row(rows), SYNC)

    per_node = [
        rows_of(
            node.query(
                "SELECT source_id, cityHash64(source_id) % 2 AS shard, count() AS n "
                f"FROM {database}.records_local GROUP BY source_id FORMAT JSONEachRow"
            )
        )
        for node in clickhouse_cluster.nodes
    ]
    for index, held in enumerate(per_node):
        assert held, f"shard {index + 1} got no rows"
        assert {int(s["shard"]) for s in held} == {index}
        assert all(int(s["n"]) == 5 for s in held)
    assert sum(len(held) for held in per_node) == 20

    select = f"SELECT * FROM {database}.records FORMAT JSONEachRow"
    assert by_id(rows_of(second.query(select))) == by_id(rows)
    assert by_id(rows_of(first.query(select))) == by_id(rows)


@pytest.mark.parametrize("database", ["clickhouse_cluster"], indirect=True)
def test_a_synchronous_distributed_insert_fails_when_a_shard_cannot_store_it(
    clickhouse_cluster: Servers, database: str
) -> None:
    """Why LogHarbor sends the setting: without it an insert is acknowledged once queued on the
    receiving node, even when another shard will never take its rows."""
    first = clickhouse_cluster.nodes[0]
    first.query(
        f"CREATE TABLE {database}.records_local (source_id String) "
        "ENGINE = MergeTree ORDER BY source_id"
    )
    first.query(
        f"CREATE TABLE {database}.records AS {database}.records_local ENGINE = "
        f"Distributed({CLUSTER}, {database}, records_local, cityHash64(source_id))"
    )
    rows = json_each_row([{"source_id": f"source-{s}"} for s in range(20)])
    insert = f"INSERT INTO {database}.records FORMAT JSONEachRow"

    with pytest.raises(ClickHouseError, match="records_local doesn't exist"):
        first.query(insert, rows, SYNC)

    first.query(insert, rows)  # acknowledged, though shard 2 has no table
    assert 0 < int(first.query(f"SELECT count() FROM {database}.records_local")) < 20


@pytest.mark.parametrize("database", ["clickhouse_cluster"], indirect=True)
def test_dropping_a_month_on_each_nodes_local_table_removes_it_everywhere(
    clickhouse_cluster: Servers, database: str
) -> None:
    create_sharded_table(clickhouse_cluster, database)
    january = make_rows(sources=10, per_source=3, month="2026-01")
    february = make_rows(sources=10, per_source=3, month="2026-02")
    first = clickhouse_cluster.nodes[0]
    first.query(
        f"INSERT INTO {database}.records FORMAT JSONEachRow",
        json_each_row(january + february),
        SYNC,
    )
    # Partition operations are refused by the Distributed table itself: retention goes node by node.
    with pytest.raises(ClickHouseError, match="not supported by storage Distributed"):
        first.query(f"ALTER TABLE {database}.records DROP PARTITION 202601")

    for node in clickhouse_cluster.nodes:
        node.query(f"ALTER TABLE {database}.records_local DROP PARTITION 202601")

    for node in clickhouse_cluster.nodes:
        parts = node.query(
            "SELECT DISTINCT partition FROM system.parts "
            f"WHERE database = '{database}' AND table = 'records_local' AND active"
        )
        assert parts.split() == ["202602"]
    left = rows_of(first.query(f"SELECT * FROM {database}.records FORMAT JSONEachRow"))
    assert by_id(left) == by_id(february)


@pytest.mark.parametrize("database", ["clickhouse_node"], indirect=True)
def test_a_multi_row_insert_into_one_node_reads_back_whole(
    clickhouse_node: Servers, database: str
) -> None:
    (node,) = clickhouse_node.nodes
    node.query(
        f"CREATE TABLE {database}.records (source_id String, ts DateTime('UTC'), id UUID, "
        "status UInt16) ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (source_id, ts, id)"
    )
    rows = make_rows(sources=3, per_source=4)
    node.query(f"INSERT INTO {database}.records FORMAT JSONEachRow", json_each_row(rows))
    stored = rows_of(node.query(f"SELECT * FROM {database}.records FORMAT JSONEachRow"))
    assert by_id(stored) == by_id(rows)


def test_stop_ends_every_server_and_removes_its_files() -> None:
    servers = start_servers(2)
    assert servers is not None, "clickhouse-server is not installed"
    processes = [node.process for node in servers.nodes]
    urls = servers.http_urls
    servers.stop()
    assert all(p is not None and p.poll() is not None for p in processes)
    assert not servers.root.exists()
    for url in urls:
        with pytest.raises(httpx.TransportError):
            httpx.get(url, params={"query": "SELECT 1"}, timeout=2)


@pytest.mark.slow
def test_the_replicated_fragments_give_each_shard_two_replicas_through_zookeeper() -> None:
    """deploy/clickhouse/replicated: zookeeper.xml, macros.xml and the 2x2 remote_servers.xml."""
    with replicated_servers() as servers:
        assert servers.events_url("lh").endswith(f"/lh?cluster={CLUSTER}&replicated=1")
        first = servers.nodes[0]
        # One statement for every node: ON CLUSTER goes through ZooKeeper, macros fill the path.
        first.query(f"CREATE DATABASE lh ON CLUSTER {CLUSTER}")
        first.query(
            f"CREATE TABLE lh.records_local ON CLUSTER {CLUSTER} (source_id String, "
            "ts DateTime('UTC')) ENGINE = ReplicatedMergeTree("
            "'/clickhouse/tables/{shard}/lh/records_local', '{replica}') "
            "PARTITION BY toYYYYMM(ts) ORDER BY (source_id, ts)"
        )
        first.query(
            f"CREATE TABLE lh.records ON CLUSTER {CLUSTER} AS lh.records_local "
            f"ENGINE = Distributed({CLUSTER}, lh, records_local, cityHash64(source_id))"
        )
        rows = json_each_row(
            [{"source_id": f"source-{s}", "ts": "2026-01-05 10:00:00"} for s in range(40)]
        )
        first.query("INSERT INTO lh.records FORMAT JSONEachRow", rows, SYNC)
        for node in servers.nodes:
            node.query("SYSTEM SYNC REPLICA lh.records_local")  # waits for the copy to arrive

        held = {
            node.name: int(node.query("SELECT count() FROM lh.records_local"))
            for node in servers.nodes
        }
        assert held["ch1a"] == held["ch1b"] > 0
        assert held["ch2a"] == held["ch2b"] > 0
        assert held["ch1a"] + held["ch2a"] == 40
        assert servers.nodes[-1].query("SELECT count() FROM lh.records") == "40\n"
        # A retried identical block is dropped by replicated tables (not by plain MergeTree).
        first.query("INSERT INTO lh.records_local FORMAT JSONEachRow", rows)
        first.query("INSERT INTO lh.records_local FORMAT JSONEachRow", rows)
        assert first.query("SELECT count() FROM lh.records_local") == f"{held['ch1a'] + 40}\n"
