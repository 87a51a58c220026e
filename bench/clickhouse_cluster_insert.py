# ruff: noqa: E501  (long result lines and SQL column lists read better unwrapped)
"""Batch insert rows/s: ClickHouse, one node and the 2-shard cluster, beside PostgreSQL COPY.

The same traffic-record rows (13 columns, headers and bodies as compact JSON text, 50 sources)
go, in batches, into:
- one ClickHouse node: a MergeTree table, one HTTP POST of JSONEachRow per batch;
- the 2-node cluster ``logharbor``: the Distributed table over MergeTree local tables, sharded by
  cityHash64(source_id), with insert_distributed_sync=1 (answered once both shards stored their
  rows, as LogHarbor inserts), and without it (answered once queued on the receiving node);
- PostgreSQL (baseline, same run): COPY into a table with the same columns, a primary key on id
  and an index on (source_id, created_at), one transaction per batch.

The servers are the test harness's (tests/clickhouse_servers.py, deploy/clickhouse configs;
tests/postgres.py). Each batch is encoded before the clock starts (JSON lines for ClickHouse,
COPY text for PostgreSQL): the figures are what the database takes. What encoding the same rows
costs in Python is printed beside them (RESULT encode_*), as the writer pays it too. Each figure
is the median of --runs runs into a fresh table. Both ClickHouse nodes and PostgreSQL share this
machine's cores: the cluster shows the cost of the Distributed hop, not the scale-out of separate
hosts.

Usage: python bench/clickhouse_cluster_insert.py [--rows 200000] [--batch 10000] [--runs 3]
Prints RESULT lines; append them to RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import psycopg

from common import RECORD, machine, now_text

if TYPE_CHECKING:
    from clickhouse_servers import Node

COLUMNS = (
    "id",
    "source_id",
    "created_at",
    "created_ms",
    "method",
    "status",
    "domain",
    "pathname",
    "elapsed_ms",
    "request_headers",
    "request_body",
    "response_headers",
    "response_body",
)
CH_TYPES = "id UUID, source_id String, created_at DateTime('UTC'), created_ms UInt16, method String, status UInt16, domain String, pathname String, elapsed_ms Float64, request_headers String, request_body String, response_headers String, response_body String"
CH_ENGINE = (
    "ENGINE = MergeTree PARTITION BY toYYYYMM(created_at) ORDER BY (source_id, created_at, id)"
)
PG_TABLE = "CREATE TABLE records (id uuid PRIMARY KEY, source_id text NOT NULL, created_at timestamptz NOT NULL, created_ms smallint NOT NULL, method text NOT NULL, status smallint NOT NULL, domain text NOT NULL, pathname text NOT NULL, elapsed_ms double precision NOT NULL, request_headers text NOT NULL, request_body text NOT NULL, response_headers text NOT NULL, response_body text NOT NULL); CREATE INDEX records_source_time ON records (source_id, created_at)"


def make_rows(n: int) -> list[tuple[Any, ...]]:
    def compact(value: object) -> str:
        return json.dumps(value, separators=(",", ":"))

    request_headers = compact(RECORD["requestHeaders"])
    request_body = compact(RECORD["requestBody"])
    response_headers = compact(RECORD["responseHeaders"])
    response_body = compact(RECORD["responseBody"])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    paths = [f"/v1/orders/{k}" for k in range(25)]
    return [
        (
            str(uuid.uuid4()),
            f"source-{i % 50}",
            (start + timedelta(seconds=i * 7)).replace(microsecond=0),
            i % 1000,
            "POST",
            200 + (i % 5 == 0) * 201,
            "https://api.example.com",
            paths[i % 25],
            137.25 + i % 100,
            request_headers,
            request_body,
            response_headers,
            response_body,
        )
        for i in range(n)
    ]


def json_lines(rows: list[tuple[Any, ...]]) -> bytes:
    out = []
    for row in rows:
        record = dict(zip(COLUMNS, row, strict=True))
        record["created_at"] = row[2].strftime("%Y-%m-%d %H:%M:%S")
        out.append(json.dumps(record, separators=(",", ":")))
    return ("\n".join(out) + "\n").encode()


def batches(rows: list[tuple[Any, ...]], size: int) -> list[list[tuple[Any, ...]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def copy_text(rows: list[tuple[Any, ...]]) -> bytes:
    def field(value: object) -> str:
        text = value.isoformat() if isinstance(value, datetime) else str(value)
        return (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )

    return "".join("\t".join(map(field, row)) + "\n" for row in rows).encode()


def encode_rate(
    encode: Callable[[list[tuple[Any, ...]]], bytes], rows: list[tuple[Any, ...]], size: int
) -> float:
    t0 = time.perf_counter()
    for batch in batches(rows, size):
        encode(batch)
    return len(rows) / (time.perf_counter() - t0)


def clickhouse_rate(
    node: Node, table: str, bodies: list[bytes], n: int, settings: dict[str, str]
) -> float:
    params = {**settings, "query": f"INSERT INTO {table} FORMAT JSONEachRow"}
    with httpx.Client(timeout=300) as client:
        t0 = time.perf_counter()
        for body in bodies:
            answer = client.post(node.http_url, params=params, content=body)
            if answer.status_code != 200:
                raise RuntimeError(answer.text)
        return n / (time.perf_counter() - t0)


def postgres_rate(url: str, bodies: list[bytes], n: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        for body in bodies:
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(f"COPY records ({', '.join(COLUMNS)}) FROM STDIN") as copy,
            ):
                copy.write(body)
        return n / (time.perf_counter() - t0)


def median_of(
    runs: int, fresh: Callable[[], None], measure: Callable[[], float]
) -> tuple[float, float, float]:
    rates = []
    for _ in range(runs):
        fresh()
        rates.append(measure())
    return statistics.median(rates), min(rates), max(rates)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()

    from clickhouse_servers import CLUSTER, start_servers  # tests/, on sys.path through common
    from fixtures.postgres import start_cluster

    print(f"# {now_text()} {machine()}", flush=True)
    rows = make_rows(a.rows)
    json_bodies = [json_lines(batch) for batch in batches(rows, a.batch)]
    copy_bodies = [copy_text(batch) for batch in batches(rows, a.batch)]
    single = start_servers(1)
    cluster = start_servers(2)
    pg = start_cluster()
    if single is None or cluster is None or pg is None:
        sys.exit(
            "!! clickhouse-server or PostgreSQL binaries not found (apt-get install clickhouse-server postgresql)"
        )
    try:
        version = single.nodes[0].query("SELECT version()").strip()
        (node,) = single.nodes

        def fresh_single() -> None:
            node.query("DROP TABLE IF EXISTS default.records")
            node.query(f"CREATE TABLE default.records ({CH_TYPES}) {CH_ENGINE}")

        def fresh_cluster() -> None:
            for n in cluster.nodes:
                n.query("DROP TABLE IF EXISTS default.records")
                n.query("DROP TABLE IF EXISTS default.records_local")
                n.query(f"CREATE TABLE default.records_local ({CH_TYPES}) {CH_ENGINE}")
                n.query(
                    f"CREATE TABLE default.records AS default.records_local ENGINE = Distributed({CLUSTER}, default, records_local, cityHash64(source_id))"
                )

        def fresh_pg() -> None:
            with psycopg.connect(pg.url(), autocommit=True) as conn:
                conn.execute("DROP TABLE IF EXISTS records")
                conn.execute(PG_TABLE)

        def stored(nodes: list[Node], table: str) -> int:
            return sum(int(n.query(f"SELECT count() FROM default.{table}")) for n in nodes)

        first = cluster.nodes[0]
        results = []
        figure = median_of(
            a.runs,
            fresh_single,
            lambda: clickhouse_rate(node, "default.records", json_bodies, a.rows, {}),
        )
        assert stored([node], "records") == a.rows
        results.append(("clickhouse_1node", figure, "MergeTree, JSONEachRow over HTTP"))
        figure = median_of(
            a.runs,
            fresh_cluster,
            lambda: clickhouse_rate(
                first, "default.records", json_bodies, a.rows, {"insert_distributed_sync": "1"}
            ),
        )
        assert stored(cluster.nodes, "records_local") == a.rows
        results.append(
            (
                "clickhouse_2shards_sync",
                figure,
                "Distributed over 2 MergeTree shards, insert_distributed_sync=1",
            )
        )
        figure = median_of(
            a.runs,
            fresh_cluster,
            lambda: clickhouse_rate(first, "default.records", json_bodies, a.rows, {}),
        )
        results.append(
            (
                "clickhouse_2shards_async",
                figure,
                "Distributed, default async: answered once queued on node 1",
            )
        )
        figure = median_of(a.runs, fresh_pg, lambda: postgres_rate(pg.url(), copy_bodies, a.rows))
        with psycopg.connect(pg.url()) as conn:
            assert conn.execute("SELECT count(*) FROM records").fetchone() == (a.rows,)
        results.append(
            (
                "baseline postgresql_copy",
                figure,
                "COPY, PK + (source_id, created_at) index, 1 txn per batch",
            )
        )
        for name, encode, what in (
            ("encode_jsoneachrow", json_lines, "Python json.dumps per row, no database"),
            ("encode_copy_text", copy_text, "Python COPY text per row, no database"),
        ):
            rate = encode_rate(encode, rows, a.batch)
            results.append((name, (rate, rate, rate), what))

        for name, (rate, low, high), what in results:
            print(
                f"RESULT {name} rows_per_s={rate:.0f} (runs {low:.0f}-{high:.0f}) rows={a.rows} batch={a.batch} clickhouse={version} ({what})",
                flush=True,
            )
    finally:
        single.stop()
        cluster.stop()
        pg.stop()


if __name__ == "__main__":
    main()
