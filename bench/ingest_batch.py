# ruff: noqa: E501  (long result lines and SQL column lists read better unwrapped)
"""Batch ingest records/s over HTTP vs raw batched inserts of the same rows into the same database.

LogHarbor: wrk POSTs batches of 500 compose records to /http-traffic-record/:id/batch (8
connections, so that both workers get some; median of 3 runs). Baseline, same run and same database: the rows those records become (requests,
responses, http_traffic) prepared in Python before the clock starts, inserted 1,000 records per
transaction with sqlite3 executemany (SQLite) or COPY (PostgreSQL), without rollups.

Usage: python bench/ingest_batch.py [--db sqlite,postgresql] [--seconds 10] [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import (
    RECORD,
    SECRET,
    databases,
    lua_script,
    machine,
    median_run,
    now_text,
    seed,
    server,
    wrk,
    wrk_available,
)
from logharbor.common.ids import new_id
from logharbor.db.engine import make_engine
from logharbor.ingest.compose import prepare_record
from logharbor.ingest.normalize import exception_json
from logharbor.ingest.records import Payload
from logharbor.ingest.store import REQUEST_COLUMNS, RESPONSE_COLUMNS, TRAFFIC_COLUMNS
from logharbor.settings import Settings
from logharbor.traffic.normalize import IngestConfig

TABLES = ("requests", "responses", "http_traffic")


def payload_row(payload: Payload, source_id: str, created_at, query: bool) -> tuple:
    """A requests/responses row as the store writes it (JSON columns as JSON text)."""
    row = [
        new_id(),
        source_id,
        None,
        json.dumps(payload.headers),
        payload.body.text,
        payload.body.preview,
        payload.body.size,
        payload.body.truncated,
    ]
    if query:
        row.append(json.dumps(payload.query_params))
    row.append(created_at)
    return tuple(row)


def raw_rows(
    source_id: str, domain_id: str, pathname_id: str, n: int
) -> list[dict[str, list[tuple]]]:
    from logharbor.common.timestamps import utcnow

    config = IngestConfig.from_settings(Settings())
    prepared = prepare_record(RECORD, config)
    now = utcnow()
    exception = exception_json(prepared.exception)
    exception_text = None if exception is None else json.dumps(exception)
    batches = []
    for start in range(0, n, 1000):
        b: dict[str, list[tuple]] = {t: [] for t in TABLES}
        for _ in range(min(1000, n - start)):
            req = payload_row(prepared.request, source_id, now, query=True)
            res = payload_row(prepared.response, source_id, now, query=False)
            b["requests"].append(req)
            b["responses"].append(res)
            # Every column the app writes (ingest.store.TRAFFIC_COLUMNS), in that order.
            b["http_traffic"].append(
                (
                    new_id(),
                    source_id,
                    domain_id,
                    pathname_id,
                    prepared.status,
                    prepared.method,
                    prepared.level,
                    prepared.elapsed_time,
                    prepared.traffic_user_id,
                    req[0],
                    res[0],
                    now,
                    None,  # no route template
                    prepared.trace_id,
                    prepared.span_id,
                    exception_text,
                )
            )
        batches.append(b)
    return batches


def raw_insert(url: str, source_id: str, n: int) -> float:
    from sqlalchemy import insert

    from logharbor.common.timestamps import utcnow
    from logharbor.db.engine import Database
    from logharbor.db.tables import domains, pathnames

    db = Database(make_engine(url))
    did, pid = new_id(), new_id()
    with db.write() as conn:
        conn.execute(
            insert(domains).values(
                id=did,
                traffic_source_id=source_id,
                value="https://raw.example.com",
                protocol="HTTPS",
                created_at=utcnow(),
            )
        )
        conn.execute(
            insert(pathnames).values(
                id=pid,
                traffic_source_id=source_id,
                domain_id=did,
                value="/raw",
                created_at=utcnow(),
            )
        )
    batches = raw_rows(source_id, did, pid, n)
    cols = {
        "requests": REQUEST_COLUMNS,
        "responses": RESPONSE_COLUMNS,
        "http_traffic": TRAFFIC_COLUMNS,
    }
    for b in batches:
        assert all(len(row) == len(cols[t]) for t in TABLES for row in b[t])
    raw = db.engine.raw_connection()
    driver = raw.driver_connection
    t0 = time.perf_counter()
    if url.startswith("sqlite"):
        for b in batches:
            driver.execute("BEGIN IMMEDIATE")
            for t in TABLES:
                driver.executemany(
                    f"INSERT INTO {t} ({', '.join(cols[t])}) VALUES ({', '.join('?' * len(cols[t]))})",
                    [
                        tuple(v.replace(tzinfo=None) if hasattr(v, "tzinfo") else v for v in r)
                        for r in b[t]
                    ],
                )
            driver.execute("COMMIT")
    else:
        for b in batches:
            with driver.transaction(), driver.cursor() as cur:
                for t in TABLES:
                    with cur.copy(f"COPY {t} ({', '.join(cols[t])}) FROM STDIN") as cp:
                        for r in b[t]:
                            cp.write_row(r)
    elapsed = time.perf_counter() - t0
    raw.close()
    db.dispose()
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--raw-records", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    a = ap.parse_args()
    if not wrk_available():
        sys.exit(2)
    print(
        f"# ingest_batch: {a.batch} records/request, c{a.connections}, {a.seconds}s, 2 workers; {now_text()}; {machine()}",
        flush=True,
    )
    body = json.dumps([RECORD] * a.batch)
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in databases(a.db):
            _, source_id, token = seed(url)
            baseline = raw_insert(url, source_id, a.raw_records)
            print(
                f"RESULT baseline raw_insert db={name} records_per_s={baseline:.0f} ({'executemany' if name == 'sqlite' else 'COPY'}, 1000 records/txn, 3 tables)",
                flush=True,
            )
            env = {
                "LOGHARBOR_DATABASE_URL": url,
                "LOGHARBOR_SECRET_KEY": SECRET,
                "LOGHARBOR_DATA_DIR": tmp,
            }
            with server("logharbor.app:create_app_from_env", factory=True, env=env) as base:
                lua = lua_script(Path(tmp) / "batch.lua", body, token)
                target = f"{base}/http-traffic-record/{source_id}/batch"
                wrk(target, lua, a.connections, 3)
                runs = [wrk(target, lua, a.connections, a.seconds) for _ in range(a.runs)]
                got = median_run(runs)
            rate = got["rps"] * a.batch
            print(
                f"RESULT batch db={name} records_per_s={rate:.0f} (runs {got['rps_min'] * a.batch:.0f}-{got['rps_max'] * a.batch:.0f}) req_per_s={got['rps']:.1f} p99_ms={got['p99_ms']:.0f} "
                f"non2xx={got['non2xx']:.0f} errors={got['errs']:.0f} ratio_to_raw={rate / baseline:.1%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
