# ruff: noqa: E501  (long result lines and SQL read better unwrapped)
"""Events on ClickHouse: batch ingest through LogHarbor's own path, and reads at 1M and 10M records.

``ingest``: the same traffic records (500 per submission, 8 submissions in flight, as
``ingest_batch.py``'s wrk -c8 sends them) go through the real storage path, in this process:
the group-commit writer (``db.writer.GroupCommitWriter`` with the app's ingest subscribers, so
the statistics rollups are written at ingest as in the app) running ``ingest.pipeline.Pipeline``
over
- (a) ``ClickHouseRecordStore`` on chDB (``chdb:///dir/db``),
- (b) ``ClickHouseRecordStore`` on the 2-node Debian ClickHouse 18.16 cluster (``?cluster=``,
  Distributed tables, insert_distributed_sync=1), started as the tests start it,
- (c) ``SqlRecordStore`` on PostgreSQL,
with the metadata (users, sources, names, rollups) on PostgreSQL for all three, and beside them
(d) the raw baseline of the same run: the rows the SQL store writes, COPYed into PostgreSQL
1,000 records per transaction (``ingest_batch.raw_insert``). HTTP is left out: the records are
validated and normalized (``prepare_record``) before the clock starts; ``ingest_batch.py``
measures the HTTP side. Where the time goes: time inside the ClickHouse transport (the server,
and HTTP for the cluster) and inside ``EventsClient.insert`` outside it (JSON encoding) are
summed per run; ``--profile`` adds a cProfile of the writer thread.

``queries``: chDB loaded with N records (``--sizes``, default 1M then 10M, added to the same
tables), generated here and inserted as JSONEachRow, 100k rows per ``EventsClient.insert``
(not through ingest: 10M records through the pipeline would take an hour here). 30 days of
records, 4 sources (the queried one has half), 50 pathnames on 2 domains with 1/rank
popularity, ~2 % 5xx, log-normal latencies, realistic headers and bodies with varying ids;
``record_ids`` rows as the store writes them (3-4 per record). Then p50/p95 over ``--runs``
runs of
- ``list``: ``traffic.services.list_records`` as the route runs it: status=5xx, pathname text
  "orders", page 1 of 50, newest first, with totalItems (metadata on SQLite); and
  ``list_last_24h``, the same with the route's start filter at 24 hours ago;
- ``stats``: a 7-day per-pathname statistics query on the raw events (count, 5xx errors,
  p50/p95 latency per pathname): the statement a ClickHouse statistics path would run, in the
  SQL both engines accept (``ingest`` checks that the 18.16 cluster runs it too).
Disk per record comes from system.parts (compressed bytes of active parts).

Usage: python bench/clickhouse_events.py ingest [--records 100000] [--runs 3] [--profile]
       python bench/clickhouse_events.py queries [--sizes 1000000,10000000] [--runs 30]
Prints RESULT lines; append them with date, machine and load to RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from common import RECORD, machine, now_text, seed
from logharbor.auth.deps import Principal
from logharbor.db import events_schema, migrate
from logharbor.db.clickhouse import EventsClient, Transport, literal
from logharbor.db.clickhouse_sql import to_events_row
from logharbor.db.engine import Database, make_engine
from logharbor.db.writer import GroupCommitWriter
from logharbor.ingest.clickhouse_store import ClickHouseRecordStore
from logharbor.ingest.compose import prepare_record
from logharbor.ingest.pipeline import Pipeline, Submission
from logharbor.ingest.store import SqlRecordStore
from logharbor.settings import Settings
from logharbor.traffic.normalize import IngestConfig, level_for

# --- shared data --------------------------------------------------------------------------------

DOMAINS = ("https://api.example.com", "https://shop.example.com")
SEGMENTS = ("orders", "users", "carts", "payments", "products", "search", "auth", "invoices")
PATHNAMES = [
    f"/v1/{SEGMENTS[k % len(SEGMENTS)]}" + ("" if k < 8 else f"/{k}" if k % 3 else "/{id}/items")
    for k in range(25)
]
PATHS = [(domain, path) for domain in DOMAINS for path in PATHNAMES]  # 50, by rank
WEIGHTS = [1 / (rank + 1) for rank in range(len(PATHS))]
METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")


def status_of(r: random.Random) -> int:
    x = r.random()
    if x < 0.02:
        return r.choice((500, 502, 503, 504))
    if x < 0.07:
        return r.choice((400, 401, 403, 404, 409, 422))
    if x < 0.10:
        return r.choice((301, 304))
    return r.choice((200, 200, 200, 201, 204))


def cpu_seconds(pids: list[int]) -> float:
    """User+system CPU of ``pids`` and their direct children (PostgreSQL's backends)."""
    wanted = set(pids)
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) in wanted or int(fields[1]) in wanted:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return os.getloadavg().__repr__()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- 1. ingest ----------------------------------------------------------------------------------


@dataclass
class Timing:
    """Seconds spent in the ClickHouse transport (server + HTTP) and in EventsClient.insert."""

    transport: float = 0.0
    insert: float = 0.0
    inserts: int = 0
    rows: int = 0


class TimedTransport:
    def __init__(self, inner: Transport, timing: Timing) -> None:
        self.inner, self.timing = inner, timing

    def execute(self, sql: str, body: str | None = None) -> str:
        t0 = time.perf_counter()
        try:
            return self.inner.execute(sql, body)
        finally:
            if body is not None:
                self.timing.transport += time.perf_counter() - t0

    def close(self) -> None:
        self.inner.close()


def timed(client: EventsClient, timing: Timing) -> None:
    """Measure where an insert's time goes, without touching the client's code."""
    client.nodes = [TimedTransport(node, timing) for node in client.nodes]
    plain = client.insert

    def insert(table: str, rows: Any, *, settings: str = "") -> None:
        t0 = time.perf_counter()
        plain(table, rows, settings=settings)
        timing.insert += time.perf_counter() - t0
        timing.inserts += 1
        timing.rows += len(rows)

    client.insert = insert  # type: ignore[method-assign]


class ProfiledWriter(GroupCommitWriter):
    """The writer with its thread under cProfile (``--profile``)."""

    profile: cProfile.Profile | None = None

    def _run(self) -> None:
        self.profile = cProfile.Profile()
        self.profile.enable()
        try:
            super()._run()
        finally:
            self.profile.disable()


def exchanges(n: int) -> list[Any]:
    """``n`` normalized records (the HTTP side's work, done before the clock): 500 distinct ones
    (50 pathnames, a status mix), repeated."""
    config = IngestConfig.from_settings(Settings())
    r = random.Random(7)
    distinct = []
    for k in range(500):
        domain, path = r.choices(PATHS, WEIGHTS)[0]
        raw = {
            **RECORD,
            "domainUrl": domain,
            "pathnameUrl": path.replace("{id}", str(k)),
            "status": status_of(r),
            "method": r.choice(METHODS),
            "elapsedTime": round(r.lognormvariate(4, 0.8), 2),
            "responseBody": {**RECORD["responseBody"], "id": f"ord_{r.getrandbits(40):010x}"},
        }
        distinct.append(prepare_record(raw, config))
    return [distinct[i % 500] for i in range(n)]


async def drive(
    writer: GroupCommitWriter, pipeline: Pipeline, submissions: list[Submission], concurrency: int
) -> float:
    pending = iter(submissions)

    async def sender() -> None:
        for submission in pending:
            outcome = await writer.run_bulk(pipeline, submission)
            if not isinstance(outcome, list) or not all(isinstance(a, dict) for a in outcome):
                raise RuntimeError(f"not stored: {outcome!r}"[:500])

    t0 = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return time.perf_counter() - t0


def ingest_case(
    name: str,
    url: str,
    events: EventsClient | None,
    records: list[Any],
    a: argparse.Namespace,
    server_pids: dict[str, list[int]],
) -> dict[str, Any]:
    from logharbor.app import ingest_subscribers

    user_id, source_id, _ = seed(url)
    db = Database(make_engine(url), events)
    timing = Timing()
    if events is not None:
        events_schema.upgrade(events)
        timed(events, timing)
        store: Any = ClickHouseRecordStore(events)
    else:
        store = SqlRecordStore()
    pipeline = Pipeline(store)
    principal = Principal(user_id)
    chunks = [records[i : i + a.batch] for i in range(0, len(records), a.batch)]
    submissions = [Submission(principal, source_id, chunk, detail=False) for chunk in chunks]
    rates, shares = [], []
    profile_text = ""
    # Run 0 warms up (names created, caches filled); with --profile a last run, not counted,
    # goes under cProfile (which slows the writer thread down).
    for run in range(a.runs + 1 + a.profile):
        profiled = a.profile and run == a.runs + 1
        writer_class = ProfiledWriter if profiled else GroupCommitWriter
        writer = writer_class(db, on_events=ingest_subscribers(events))
        writer.start()
        timing.transport = timing.insert = 0.0
        timing.inserts = timing.rows = 0
        todo = submissions[:16] if run == 0 else submissions
        cpu0 = time.process_time()
        servers0 = {k: cpu_seconds(v) for k, v in server_pids.items()}
        seconds = asyncio.run(drive(writer, pipeline, todo, a.concurrency))
        cpu = time.process_time() - cpu0
        servers_cpu = {k: cpu_seconds(v) - servers0[k] for k, v in server_pids.items()}
        writer.close()
        if isinstance(writer, ProfiledWriter) and writer.profile is not None:
            out = io.StringIO()
            pstats.Stats(writer.profile, stream=out).sort_stats("tottime").print_stats(18)
            profile_text = out.getvalue()
        if run == 0 or profiled:
            continue
        n = sum(len(s.exchanges) for s in todo)
        rates.append(n / seconds)
        shares.append(
            {
                "seconds": seconds,
                "process_cpu_s": cpu,
                "servers_cpu_s": servers_cpu,
                "transport_s": timing.transport,
                "encode_s": timing.insert - timing.transport,
                "groups": writer.transactions,
                "ch_inserts": timing.inserts,
                "ch_rows": timing.rows,
            }
        )
    if events is not None:
        stored = events.query(
            f"SELECT count() AS n FROM http_traffic WHERE traffic_source_id = {literal(source_id)}"
        )[0]["n"]
    else:
        with db.read() as conn:
            stored = conn.exec_driver_sql(
                f"SELECT count(*) FROM http_traffic WHERE traffic_source_id = '{source_id}'"
            ).scalar_one()
    expected = sum(len(s.exchanges) for s in submissions[:16]) + (a.runs + a.profile) * len(records)
    assert stored == expected, (name, stored, expected)
    db.dispose()
    median = sorted(rates)[len(rates) // 2]  # a run's own figure, for its time shares
    share = shares[rates.index(median)]
    return {
        "name": name,
        "rate": median,
        "low": min(rates),
        "high": max(rates),
        "share": share,
        "profile": profile_text,
        "source_id": source_id,
    }


STATS_SQL = """SELECT domain, pathname, count() AS requests, countIf(status >= 500) AS errors,
       quantiles(0.5, 0.95)(elapsed_time) AS latency_p50_p95
FROM {table}
WHERE traffic_source_id = {source} AND created_at >= {start} AND created_at < {end}
GROUP BY domain, pathname
ORDER BY requests DESC, domain, pathname"""


def stats_sql(table: str, source_id: str, end_ms: int) -> str:
    return STATS_SQL.format(
        table=table, source=literal(source_id), start=end_ms - 7 * 86_400_000, end=end_ms
    )


def run_ingest(a: argparse.Namespace) -> None:
    from ingest_batch import raw_insert

    from clickhouse_servers import start_servers
    from fixtures.postgres import start_cluster

    print(f"# clickhouse_events ingest: {now_text()}; {machine()}; load {load()}", flush=True)
    records = exchanges(a.records)
    pg = start_cluster()
    servers = start_servers(2)
    if pg is None or servers is None:
        sys.exit("!! PostgreSQL or clickhouse-server binaries not found")
    tmp = tempfile.mkdtemp(prefix="lh-bench-ch-")
    results = []
    try:
        version = servers.nodes[0].query("SELECT version()").strip()

        pg_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
        ch_pids = [node.process.pid for node in servers.nodes if node.process is not None]
        pids = {"postgresql": [pg_pid], "clickhouse": ch_pids}

        def database(name: str) -> str:
            import psycopg

            with psycopg.connect(pg.url(), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            engine = make_engine(pg.url(name))
            migrate.upgrade(engine)
            engine.dispose()
            return pg.url(name)

        chdb_events = EventsClient.from_url(f"chdb:///{tmp}/chdb/events")
        cluster_events = EventsClient.from_url(servers.events_url("logharbor"))
        cases: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            (
                "chdb",
                lambda: ingest_case("chdb", database("meta_chdb"), chdb_events, records, a, pids),
            ),
            (
                "cluster",
                lambda: ingest_case(
                    "cluster", database("meta_cluster"), cluster_events, records, a, pids
                ),
            ),
            ("sql_pg", lambda: ingest_case("sql_pg", database("meta_sql"), None, records, a, pids)),
        ]
        for name, case in cases:
            if name not in a.cases.split(","):
                continue
            print(f"# {name}: load {load()}", flush=True)
            result = case()
            results.append(result)
            s = result["share"]
            extra = ""
            if result["name"] != "sql_pg":
                extra = (
                    f" ch_server_s={s['transport_s']:.2f} ({s['transport_s'] / s['seconds']:.0%})"
                    f" json_encode_s={s['encode_s']:.2f} ({s['encode_s'] / s['seconds']:.0%})"
                    f" ch_inserts={s['ch_inserts']} ch_rows_per_insert={s['ch_rows'] / max(1, s['ch_inserts']):.0f}"
                )
            print(
                f"RESULT ingest store={result['name']} records_per_s={result['rate']:.0f} (runs {result['low']:.0f}-{result['high']:.0f}) "
                f"records={a.records} per_submission={a.batch} in_flight={a.concurrency} groups={s['groups']} "
                f"wall_s={s['seconds']:.2f} cpu_us_per_record: this_process={s['process_cpu_s'] / a.records * 1e6:.0f}"
                f" postgresql={s['servers_cpu_s']['postgresql'] / a.records * 1e6:.0f} clickhouse_servers={s['servers_cpu_s']['clickhouse'] / a.records * 1e6:.0f}{extra} clickhouse={version if result['name'] == 'cluster' else 'chdb' if result['name'] == 'chdb' else '-'} load={load()}",
                flush=True,
            )
        raw_url = database("raw_copy")
        copy_rates = []
        for _ in range(a.runs):
            _, raw_source, _ = seed(raw_url)  # raw_insert adds its own names to a source
            copy_rates.append(raw_insert(raw_url, raw_source, a.records))
        copy = statistics.median(copy_rates)
        print(
            f"RESULT baseline postgresql_copy records_per_s={copy:.0f} (runs {min(copy_rates):.0f}-{max(copy_rates):.0f}) "
            f"(requests+responses+http_traffic rows of the same records, COPY, 1000 records/txn; load {load()})",
            flush=True,
        )
        for result in results:
            if result["profile"]:
                print(
                    f"# profile of the writer thread, store={result['name']} (last run, by own time)"
                )
                print("\n".join("#   " + line for line in result["profile"].splitlines()[:40]))
        cluster_result = next((r for r in results if r["name"] == "cluster"), None)
        if cluster_result is not None:
            end_ms = int(time.time() * 1000) + 60_000
            rows = cluster_events.query(
                stats_sql("http_traffic", cluster_result["source_id"], end_ms)
            )
            print(
                f"RESULT stats_sql_on_18_16 groups={len(rows)} requests={sum(r['requests'] for r in rows)} "
                f"(the queries bench's statistics statement, run on the cluster's Distributed table)",
                flush=True,
            )
    finally:
        servers.stop()
        pg.stop()
        subprocess.run(["rm", "-rf", tmp], check=False)


# --- 2. queries on chDB at 1M and 10M -------------------------------------------------------------


def uuid7_text(ms: int, rand: bytes) -> str:
    """UUIDv7 text for a record created at ``ms`` (as the store's ids are): 10 random bytes."""
    h = f"{ms:012x}" + rand.hex()
    return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-{'89ab'[rand[3] & 3]}{h[17:20]}-{h[20:32]}"


class Generator:
    """Wide http_traffic rows and their record_ids rows, in time order over ``days``."""

    def __init__(self, end_ms: int, days: int, seed_: int) -> None:
        self.r = random.Random(seed_)
        self.end_ms, self.days = end_ms, days
        self.path_ids = {p: uuid7_text(end_ms - days * 86_400_000, os.urandom(10)) for p in PATHS}
        self.domain_ids = {
            d: uuid7_text(end_ms - days * 86_400_000, os.urandom(10)) for d in DOMAINS
        }
        self.request_headers = json.dumps(RECORD["requestHeaders"], separators=(",", ":"))
        self.response_headers = json.dumps(RECORD["responseHeaders"], separators=(",", ":"))

    def rows(
        self, sources: list[str], share: list[float], start: int, count: int, total: int
    ) -> list[dict[str, Any]]:
        r = self.r
        span = self.days * 86_400_000
        begin = self.end_ms - span
        traffic = []
        entropy = os.urandom(40 * count)
        picks = r.choices(PATHS, WEIGHTS, k=count)
        owners = r.choices(sources, share, k=count)
        for k in range(count):
            # Time order, as ingest writes them: each insert lands in one or two day partitions.
            created = begin + int((start + k + r.random()) * span / total)
            e = entropy[40 * k : 40 * k + 40]
            record_id = uuid7_text(created, e[:10])
            request_id = uuid7_text(created, e[10:20])
            response_id = uuid7_text(created, e[20:30])
            trace_id = e[30:40].hex() + e[:6].hex()
            domain, path = picks[k]
            status = status_of(r)
            user = f"c_{r.randrange(20000)}"
            source = owners[k]
            req_body = f'{{"customerId":"{user}","items":[{{"sku":"SKU-{r.randrange(5000)}","qty":{r.randrange(1, 5)},"price":{r.randrange(100, 9999) / 100}}}],"currency":"EUR"}}'
            res_body = (
                f'{{"id":"ord_{e[:5].hex()}","status":"created","total":{r.randrange(100, 99999) / 100},"currency":"EUR"}}'
                if status < 400
                else f'{{"error":"{status}","message":"request failed","requestId":"{request_id}"}}'
            )
            traffic.append(
                {
                    "id": record_id,
                    "traffic_source_id": source,
                    "domain_id": self.domain_ids[domain],
                    "pathname_id": self.path_ids[(domain, path)],
                    "status": status,
                    "method": METHODS[k % 6],
                    "level": level_for(status),
                    "elapsed_time": round(r.lognormvariate(4, 0.8), 2),
                    "traffic_user_id": user,
                    "request_id": request_id,
                    "response_id": response_id,
                    "created_at": created,
                    "route_pathname_id": None,
                    "trace_id": trace_id,
                    "span_id": e[30:38].hex(),
                    "exception": None,
                    "domain": domain,
                    "protocol": "HTTPS",
                    "pathname": path,
                    "route": None,
                    "rq_headers": self.request_headers,
                    "rq_body": req_body,
                    "rq_body_preview": req_body[:256],
                    "rq_body_size": len(req_body),
                    "rq_body_truncated": 0,
                    "rq_created_at": created,
                    "rq_query_params": '{"page":"1"}',
                    "rs_headers": self.response_headers,
                    "rs_body": res_body,
                    "rs_body_preview": res_body[:256],
                    "rs_body_size": len(res_body),
                    "rs_body_truncated": 0,
                    "rs_created_at": created,
                }
            )
        return traffic


class StatementTimer:
    """Milliseconds of every query statement (not inserts) through a transport."""

    def __init__(self, inner: Transport, into: list[float]) -> None:
        self.inner, self.into = inner, into

    def execute(self, sql: str, body: str | None = None) -> str:
        t0 = time.perf_counter()
        text = self.inner.execute(sql, body)
        if body is None:
            self.into.append((time.perf_counter() - t0) * 1000)
        return text

    def close(self) -> None:
        self.inner.close()


def parts(events: EventsClient, table: str) -> dict[str, Any]:
    return events.query(
        "SELECT count() AS parts, sum(rows) AS rows, sum(data_compressed_bytes) AS compressed, "
        "sum(data_uncompressed_bytes) AS uncompressed FROM system.parts "
        f"WHERE database = {literal(events.database)} AND table = {literal(table)} AND active"
    )[0]


def wait_for_merges(events: EventsClient, deadline_s: float) -> int:
    """Wait (up to a deadline) until no merge runs: a table a month old has merged parts."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        running = events.query(
            f"SELECT count() AS n FROM system.merges WHERE database = {literal(events.database)}"
        )[0]["n"]
        if running == 0:
            break
        time.sleep(0.5)
    return int(parts(events, "http_traffic")["parts"])


def timed_runs(fn: Callable[[], Any], runs: int, warm: int = 3) -> tuple[list[float], Any]:
    result = None
    for _ in range(warm):
        result = fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times, result


ROLLUP_TABLES = ("traffic_rollups", "traffic_rollup_latency", "traffic_rollup_path_latency")


def rollup_rows(traffic: list[dict[str, Any]], commit: int) -> dict[str, list[dict[str, Any]]]:
    """The rows ingest appends to the ClickHouse rollups for these records, one ``Rollup`` per
    group commit of ``commit`` records (``stats.rollups.EventsStoreRollups`` does the same)."""
    from logharbor.stats import rollups as r

    out: dict[str, list[dict[str, Any]]] = {name: [] for name in ROLLUP_TABLES}
    for k in range(0, len(traffic), commit):
        rollup = r.Rollup()
        for row in traffic[k : k + commit]:
            rollup.add(
                row["traffic_source_id"],
                row["domain_id"],
                row["route_pathname_id"] or row["pathname_id"],
                row["method"],
                row["status"],
                row["elapsed_time"],
                datetime.fromtimestamp(row["created_at"] / 1000, UTC),
            )
        for name, params in (
            ("traffic_rollups", r._rollup_params(rollup.rows)),
            ("traffic_rollup_latency", r._latency_params(rollup.histogram)),
            ("traffic_rollup_path_latency", r._path_latency_params(rollup.path_histogram)),
        ):
            table = events_schema.metadata.tables[name]
            out[name].extend(to_events_row(table, p) for p in params)
    return out


def load_records(
    a: argparse.Namespace,
    events: EventsClient,
    generator: Generator,
    sources: list[str],
    share: list[float],
    loaded: int,
    size: int,
) -> None:
    """Grow the tables to ``size`` records spread over the whole 30 days again (10M is 1M plus
    9M more over the same days: 10x the density), with their rollups and record_ids rows."""
    todo = size - loaded
    t_gen = t_ins = t_roll = 0.0
    rollup_count = 0
    if a.grow == "copy" and loaded:
        # Quick repeats: the rows generated so far again, with fresh ids, made by the engine
        # (same days, sources, pathnames and statuses, so the same selectivity; the copies
        # compress better than new records would, so their disk figure is not the one to use).
        # Each copy is another set of group commits, so their rollup rows are copied too.
        t1 = time.perf_counter()
        for name in ROLLUP_TABLES:
            events.command(f"CREATE TABLE {name}_first AS {name}")
            events.command(f"INSERT INTO {name}_first SELECT * FROM {name}")
        for _ in range(todo // loaded):
            events.command(
                "INSERT INTO http_traffic SELECT * REPLACE ("
                + ", ".join(
                    f"concat(substring({c}, 1, 24), lower(hex(randomString(6)))) AS {c}"
                    for c in ("id", "request_id", "response_id", "trace_id")
                )
                + ") FROM (SELECT * FROM http_traffic WHERE id IN "
                "(SELECT id FROM record_ids WHERE kind = 'http_traffic'))"
            )
            for name in ROLLUP_TABLES:
                events.command(f"INSERT INTO {name} SELECT * FROM {name}_first")
        for name in ROLLUP_TABLES:
            events.command(f"DROP TABLE {name}_first")
        t_ins += time.perf_counter() - t1
    for start in range(0, todo if a.grow == "generate" or not loaded else 0, a.insert_rows):
        count = min(a.insert_rows, todo - start)
        t0 = time.perf_counter()
        traffic = generator.rows(sources, share, start, count, todo)
        t1 = time.perf_counter()
        events.insert("http_traffic", traffic)
        t2 = time.perf_counter()
        for name, rows in rollup_rows(traffic, a.commit_records).items():
            events.insert(events_schema.written_to(name), rows)
            rollup_count += len(rows)
        t_roll += time.perf_counter() - t2
        t_ins += t2 - t1
        t_gen += t1 - t0
    # The store's record_ids rows (record, request, response, trace: 4 per record), made by the
    # engine from the rows just added rather than encoded 4x in Python.
    t0 = time.perf_counter()
    events.command(
        "INSERT INTO record_ids (id, kind, traffic_source_id, created_at) "
        "SELECT tupleElement(pair, 1), tupleElement(pair, 2), source, at FROM ("
        "SELECT id AS rid, assumeNotNull(request_id) AS rq, assumeNotNull(response_id) AS rs, "
        "assumeNotNull(trace_id) AS tr, traffic_source_id AS source, created_at AS at "
        "FROM http_traffic WHERE id NOT IN (SELECT id FROM record_ids WHERE kind = 'http_traffic')) "
        "ARRAY JOIN [(rid, 'http_traffic'), (rq, 'request_id'), (rs, 'response_id'), (tr, 'trace_id')] AS pair"
    )
    t_ids = time.perf_counter() - t0
    merged_parts = wait_for_merges(events, a.merge_wait)
    print(
        f"RESULT load records={size} added={todo} generate_s={t_gen:.0f} insert_s={t_ins:.0f} "
        f"insert_records_per_s={todo / max(t_ins, 1e-9):.0f} (EventsClient.insert: JSONEachRow, {a.insert_rows} rows/insert, incl. encoding) "
        f"rollups_s={t_roll:.0f} rollup_rows_generated={rollup_count} commit_records={a.commit_records} "
        f"record_ids_s={t_ids:.0f} active_parts={merged_parts} load={load()}",
        flush=True,
    )


def run_queries(a: argparse.Namespace) -> None:
    from logharbor.traffic.filters import TrafficFilters

    print(f"# clickhouse_events queries: {now_text()}; {machine()}; load {load()}", flush=True)
    # --data keeps the loaded tables for another run (``--sizes`` up to what is loaded are then
    # measured without loading again); without it they go to a temporary directory.
    tmp = a.data or tempfile.mkdtemp(prefix="lh-bench-chq-")
    os.makedirs(tmp, exist_ok=True)
    state_path = os.path.join(tmp, "state.json")
    try:
        meta_url = f"sqlite:///{tmp}/meta.db"
        if os.path.exists(state_path):
            with open(state_path) as f:
                state = json.load(f)
        else:
            engine = make_engine(meta_url)
            migrate.upgrade(engine)
            engine.dispose()
            user_id, source_id, _ = seed(meta_url)
            end_ms = int(datetime.now(UTC).timestamp() * 1000)
            state = {"user_id": user_id, "source_id": source_id, "end_ms": end_ms, "loaded": 0}
        user_id, source_id, end_ms = state["user_id"], state["source_id"], state["end_ms"]
        events = EventsClient.from_url(f"chdb:///{tmp}/chdb/events")
        t0 = time.perf_counter()
        applied = events_schema.upgrade(events)
        if applied and state["loaded"]:
            # Tables loaded by an older version: their migration is part of what is measured.
            print(
                f"RESULT events_migrations applied={applied} records={state['loaded']} "
                f"seconds={time.perf_counter() - t0:.1f} load={load()}",
                flush=True,
            )
        statements: list[float] = []
        events.nodes = [StatementTimer(node, statements) for node in events.nodes]
        db = Database(make_engine(meta_url), events)
        principal = Principal(user_id)
        sources = [source_id] + [f"other-source-{k}" for k in range(3)]
        share = [0.5, 0.25, 0.15, 0.10]
        generator = Generator(end_ms, a.days, 11)
        filters = TrafficFilters(status_range=(500, 599), text="orders")
        end = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
        for size in (int(s) for s in a.sizes.split(",")):
            if size > state["loaded"]:
                load_records(a, events, generator, sources, share, state["loaded"], size)
                state["loaded"] = size
                with open(state_path, "w") as f:
                    json.dump(state, f)
            elif size < state["loaded"]:
                continue
            run_reads(a, db, events, statements, principal, source_id, end, filters, size)
        db.dispose()
    finally:
        if not a.data:
            subprocess.run(["rm", "-rf", tmp], check=False)


def run_reads(
    a: argparse.Namespace,
    db: Database,
    events: EventsClient,
    statements: list[float],
    principal: Principal,
    source_id: str,
    end: datetime,
    filters: Any,
    size: int,
) -> None:
    from logharbor.common.pagination import PageRequest
    from logharbor.stats.schemas import StatsQuery
    from logharbor.stats.services import source_stats
    from logharbor.traffic.filters import SortRequest
    from logharbor.traffic.services import list_records

    end_ms = int(end.timestamp() * 1000)

    def listing() -> dict[str, Any]:
        return list_records(
            db, principal, source_id, PageRequest(1, 50), SortRequest(None, None), filters
        )

    def listing_last_day() -> dict[str, Any]:
        # The same list with the route's own start filter: the last 24 hours (what the
        # explorer asks for by default).
        since = end - timedelta(days=1)
        return list_records(
            db,
            principal,
            source_id,
            PageRequest(1, 50),
            SortRequest(None, None),
            replace(filters, start=since),
        )

    def stats_service() -> Any:
        # What GET /stats/:id?startDate=..&endDate=..&groupBy=pathname runs: the rollups.
        query = StatsQuery(startDate=end - timedelta(days=7), endDate=end, groupBy="pathname")
        return source_stats(db, principal, source_id, query)

    def stats_raw() -> list[dict[str, Any]]:
        return events.query(stats_sql("http_traffic", source_id, end_ms))

    cases = {
        "list": listing,
        "list_last_24h": listing_last_day,
        "stats": stats_service,
        "stats_raw_events": stats_raw,
    }
    wanted = a.only.split(",") if a.only else list(cases)
    for state in a.states.split(","):
        if state == "merged":
            # A month-old table has had its parts merged; chDB merges little on its own while
            # it is idle, so OPTIMIZE stands in for that time.
            t0 = time.perf_counter()
            for table in ("http_traffic", "record_ids", *ROLLUP_TABLES):
                events.command(f"OPTIMIZE TABLE {table} FINAL")
            print(
                f"# OPTIMIZE FINAL took {time.perf_counter() - t0:.0f}s; parts now {parts(events, 'http_traffic')['parts']}",
                flush=True,
            )
        active = parts(events, "http_traffic")["parts"]
        rollup_parts = {name: parts(events, name) for name in ROLLUP_TABLES}
        print(
            "# rollups: "
            + " ".join(f"{n}={p['rows']} rows/{p['parts']} parts" for n, p in rollup_parts.items()),
            flush=True,
        )
        for name in wanted:
            statements.clear()
            times, result = timed_runs(cases[name], a.runs)
            per_call = len(statements) / (a.runs + 3)
            if name.startswith("list"):
                what = f"items={len(result['data'])} totalItems={result['meta']['totalItems']}"
                # The last runs' two statements: the page, then the count.
                page_ms = [ms for ms in statements[-2 * a.runs :: 2]]
                count_ms = [ms for ms in statements[-2 * a.runs + 1 :: 2]]
                what += f" page_stmt_p50_ms={percentile(page_ms, 0.5):.1f} count_stmt_p50_ms={percentile(count_ms, 0.5):.1f}"
            elif name == "stats":
                what = f"groups={len(result.groups)} requests_in_window={result.totals.count} points={len(result.series)}"
            else:
                what = (
                    f"groups={len(result)} requests_in_window={sum(r['requests'] for r in result)}"
                )
            what += f" statements_per_call={per_call:.1f} stmt_ms_sum_p50={sum(statements) / (a.runs + 3):.1f}"
            print(
                f"RESULT query={name} records={size} parts={state}:{active} p50_ms={percentile(times, 0.5):.1f} p95_ms={percentile(times, 0.95):.1f} "
                f"max_ms={max(times):.1f} runs={len(times)} {what} load={load()}",
                flush=True,
            )
    if a.disk:
        for table in ("http_traffic", "record_ids"):
            p = parts(events, table)
            print(
                f"RESULT disk table={table} records={size} rows={p['rows']} parts={p['parts']} "
                f"compressed_bytes={p['compressed']} uncompressed_bytes={p['uncompressed']} "
                f"compressed_per_record={p['compressed'] / size:.1f} ratio={p['uncompressed'] / max(1, p['compressed']):.1f}",
                flush=True,
            )
        columns = events.query(
            "SELECT column, sum(column_data_compressed_bytes) AS c FROM system.parts_columns "
            f"WHERE database = {literal(events.database)} AND table = 'http_traffic' AND active "
            "GROUP BY column ORDER BY c DESC LIMIT 10"
        )
        print(
            f"RESULT disk_columns records={size} "
            + " ".join(f"{c['column']}={c['c'] / size:.1f}" for c in columns)
            + " (compressed bytes per record, largest columns of http_traffic)",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="part", required=True)
    i = sub.add_parser("ingest")
    i.add_argument("--records", type=int, default=100_000, help="records per measured run")
    i.add_argument("--batch", type=int, default=500, help="records per submission")
    i.add_argument("--concurrency", type=int, default=8, help="submissions in flight")
    i.add_argument("--runs", type=int, default=3)
    i.add_argument("--cases", default="chdb,cluster,sql_pg")
    i.add_argument("--profile", action="store_true", help="cProfile the writer thread")
    q = sub.add_parser("queries")
    q.add_argument("--sizes", default="1000000,10000000")
    q.add_argument("--runs", type=int, default=30)
    q.add_argument("--days", type=int, default=30)
    q.add_argument(
        "--grow",
        choices=("generate", "copy"),
        default="generate",
        help="past the first size: generate new records, or copy the first ones with fresh ids (fast)",
    )
    q.add_argument("--insert-rows", type=int, default=100_000)
    q.add_argument("--merge-wait", type=float, default=120.0, help="seconds to let merges finish")
    q.add_argument(
        "--commit-records", type=int, default=1000, help="records per group commit (rollup rows)"
    )
    q.add_argument("--data", help="keep the loaded tables in this directory (and reuse them)")
    q.add_argument("--only", help="comma-separated: list,list_last_24h,stats,stats_raw_events")
    q.add_argument(
        "--states",
        default="as_loaded,merged",
        help="as_loaded, merged (OPTIMIZE FINAL of every table: what merges leave of a month-old table)",
    )
    q.add_argument("--disk", action="store_true", help="also report disk per record")
    a = ap.parse_args()
    {"ingest": run_ingest, "queries": run_queries}[a.part](a)


if __name__ == "__main__":
    main()
