# ruff: noqa: E501  (long result lines and SQL column lists read better unwrapped)
"""Stats over N stored records (default 10 million): p95 of a 7-day, per-pathname query.

Data: one traffic source, 30 days, 2 domains x 25 pathnames, GET/POST/PUT/DELETE, mostly 2xx with
some 4xx/5xx, log-normal latencies. The rollups for all N records are built with the very code the
ingest hook runs (``stats.rollups.Rollup.add`` then ``Rollup.write``, one day per transaction);
only the raw rows of the queried 7 days are also stored (``http_traffic``), so that the
same-run baseline - the same per-pathname aggregate computed from raw rows, without percentiles -
runs on exactly the records the rollups summarise.

Usage: python bench/stats_query.py [--records 10000000] [--db sqlite,postgresql] [--runs 40]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select

from common import databases, machine, now_text, seed
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database, make_engine
from logharbor.db.tables import (
    domains,
    http_traffic,
    pathnames,
    traffic_rollup_latency,
    traffic_rollup_path_latency,
    traffic_rollups,
)
from logharbor.ingest.store import TRAFFIC_COLUMNS
from logharbor.stats import queries
from logharbor.stats.histogram import percentiles
from logharbor.stats.rollups import KEY_COLUMNS, PATH_KEY_COLUMNS, Rollup
from logharbor.stats.thinning import thin_rollups

DAYS = 30
END = datetime(2025, 8, 1, tzinfo=UTC)
START = END - timedelta(days=DAYS)
WINDOW_START = END - timedelta(days=7)


def make_names(db: Database, source_id: str) -> list[tuple[str, str]]:
    now = utcnow()
    keys = []
    with db.write() as conn:
        for host in ("api.example.com", "www.example.com"):
            did = new_id()
            conn.execute(
                insert(domains).values(
                    id=did,
                    traffic_source_id=source_id,
                    value=f"https://{host}",
                    protocol="HTTPS",
                    created_at=now,
                )
            )
            for p in range(25):
                pid = new_id()
                conn.execute(
                    insert(pathnames).values(
                        id=pid,
                        traffic_source_id=source_id,
                        domain_id=did,
                        value=f"/v1/resource{p}",
                        created_at=now,
                    )
                )
                keys.append((did, pid))
    return keys


ROLLUP_COLUMNS = [*KEY_COLUMNS, "count", "errors", "latency_sum", "latency_min", "latency_max"]
LATENCY_COLUMNS = [*KEY_COLUMNS, "bucket", "count"]
PATH_LATENCY_COLUMNS = [*PATH_KEY_COLUMNS, "bucket", "count"]
RAW_COLUMNS = list(TRAFFIC_COLUMNS)


def _stored(value: datetime, dialect: str) -> object:
    """A datetime exactly as ``UTCDateTime`` stores it (naive-UTC text on SQLite)."""
    if dialect == "sqlite":
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _bulk_insert(db: Database, table: str, columns: list[str], rows: list[tuple]) -> None:
    """Plain INSERTs in one transaction: sqlite3 executemany, or PostgreSQL COPY."""
    raw = db.engine.raw_connection()
    try:
        driver = raw.driver_connection
        if db.engine.dialect.name == "sqlite":
            driver.execute("BEGIN IMMEDIATE")
            driver.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                rows,
            )
            driver.execute("COMMIT")
        else:
            copy = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
            with driver.transaction(), driver.cursor() as cur, cur.copy(copy) as cp:
                for r in rows:
                    cp.write_row(r)
    finally:
        raw.close()


def write_day(db: Database, rollup: Rollup) -> tuple[int, int, int]:
    """Store one UTC day's ``Rollup`` with bulk INSERTs instead of the hook's upserts.

    Every minute, hour and day bucket of a UTC day lies inside that day, so the days' key sets are
    disjoint and the table starts empty: each upsert would insert, and a plain INSERT of the same
    aggregated values leaves exactly the rows the hook's ``Rollup.write`` would have left.
    """
    dialect = db.engine.dialect.name
    stamps: dict[int, object] = {}

    def key_values(key: tuple) -> tuple:
        source, resolution, start, *rest = key
        stamp = stamps.get(start)
        if stamp is None:
            stamp = stamps[start] = _stored(datetime.fromtimestamp(start, UTC), dialect)
        return (source, resolution, stamp, *rest)

    rows = [(*key_values(k), *rollup.rows[k]) for k in sorted(rollup.rows)]
    hist = [(*key_values(k), b, rollup.histogram[(k, b)]) for k, b in sorted(rollup.histogram)]
    _bulk_insert(db, "traffic_rollups", ROLLUP_COLUMNS, rows)
    path = [
        (*key_values(k), b, rollup.path_histogram[(k, b)]) for k, b in sorted(rollup.path_histogram)
    ]
    _bulk_insert(db, "traffic_rollup_latency", LATENCY_COLUMNS, hist)
    _bulk_insert(db, "traffic_rollup_path_latency", PATH_LATENCY_COLUMNS, path)
    return len(rows), len(hist), len(path)


def generate(db: Database, source_id: str, n: int) -> None:
    rng = random.Random(42)
    dialect = db.engine.dialect.name
    keys = make_names(db, source_id)
    weights = [1 / (i + 1) for i in range(len(keys))]  # a few hot routes, a long tail
    per_day = n // DAYS
    statuses = [200, 201, 204, 304, 400, 401, 404, 500, 503]
    status_w = [70, 8, 4, 3, 3, 2, 6, 3, 1]
    methods = ["GET", "POST", "PUT", "DELETE"]
    method_w = [75, 15, 6, 4]
    t0 = time.perf_counter()
    raw_rows = rollup_rows = hist_rows = path_rows = 0
    for day in range(DAYS):
        day_start = int((START + timedelta(days=day)).timestamp())
        picks = rng.choices(keys, weights, k=per_day)
        st = rng.choices(statuses, status_w, k=per_day)
        me = rng.choices(methods, method_w, k=per_day)
        offsets = sorted(rng.randrange(86400_000) for _ in range(per_day))
        # The hook's own aggregation (bucketing, status classes, histogram buckets).
        rollup = Rollup()
        add = rollup.add
        keep_raw = day_start >= WINDOW_START.timestamp()
        raw: list[tuple] = []
        lognorm = rng.lognormvariate
        for i in range(per_day):
            did, pid = picks[i]
            created = datetime.fromtimestamp(day_start + offsets[i] / 1000, UTC)
            elapsed = lognorm(3.3, 0.7)
            add(source_id, did, pid, me[i], st[i], elapsed, created)
            if keep_raw:
                raw.append(
                    (
                        new_id(),
                        source_id,
                        did,
                        pid,
                        st[i],
                        me[i],
                        "INFO",
                        elapsed,
                        None,
                        None,
                        None,
                        _stored(created, dialect),
                        None,  # no route template
                        None,  # trace_id
                        None,  # span_id
                        None,  # exception
                    )
                )
        r, h, p = write_day(db, rollup)
        rollup_rows += r
        hist_rows += h
        path_rows += p
        if raw:
            _bulk_insert(db, "http_traffic", RAW_COLUMNS, raw)
        raw_rows += len(raw)
        print(
            f"  day {day + 1}/{DAYS}: {(day + 1) * per_day:,} records rolled up, {raw_rows:,} raw rows, {time.perf_counter() - t0:.0f}s",
            flush=True,
        )
    with db.read() as conn:
        r = conn.execute(select(func.count()).select_from(traffic_rollups)).scalar_one()
        h = conn.execute(select(func.count()).select_from(traffic_rollup_latency)).scalar_one()
        p = conn.execute(select(func.count()).select_from(traffic_rollup_path_latency)).scalar_one()
    assert (r, h, p) == (rollup_rows, hist_rows, path_rows)
    elapsed = time.perf_counter() - t0
    print(
        f"  generated in {elapsed:.0f}s ({per_day * DAYS / elapsed:,.0f} records/s): {r:,} rollup rows, {h:,} + {p:,} histogram rows, {raw_rows:,} raw rows",
        flush=True,
    )


def stats_query(db: Database, source_id: str, start: int, end: int) -> dict:
    """What GET /stats does for groupBy=pathname, interval=1h (minus HTTP and JSON)."""
    with db.read() as conn:
        rollups = queries.sql_rollups(conn)
        groups = queries.grouped(rollups, source_id, start, end, "pathname", queries.Filters())
        series = queries.series(rollups, source_id, start, end, 3600, queries.Filters())
        names = queries.labels(conn, "pathname", list(groups))
    out = {}
    for key, fig in groups.items():
        out[key] = (
            fig.count,
            percentiles(
                fig.histogram, (0.5, 0.95, 0.99), lowest=fig.latency_min, highest=fig.latency_max
            ),
            names.get(key),
        )
    return {"groups": out, "points": len(series)}


def raw_query(db: Database, source_id: str, start: int, end: int) -> dict:
    t = http_traffic.c
    q = (
        select(
            t.pathname_id,
            func.count(),
            func.sum((t.status >= 400).cast_int() if False else 0),
            func.avg(t.elapsed_time),
        )
        .where(
            t.traffic_source_id == source_id,
            t.created_at >= datetime.fromtimestamp(start, UTC),
            t.created_at < datetime.fromtimestamp(end, UTC),
        )
        .group_by(t.pathname_id)
    )
    with db.read() as conn:
        return {r[0]: r[1] for r in conn.execute(q)}


def timed(fn, runs: int, starts: list[int]) -> list[float]:
    out = []
    for i in range(runs):
        s = starts[i % len(starts)]
        t0 = time.perf_counter()
        fn(s)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q * len(v)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--runs", type=int, default=40)
    a = ap.parse_args()
    print(f"# stats_query: {a.records:,} records, {now_text()}, {machine()}", flush=True)
    for name, url in databases(a.db):
        _, source_id, _ = seed(url)
        db = Database(make_engine(url))
        print(f"[{name}] generating...", flush=True)
        generate(db, source_id, a.records)
        if name == "postgresql":
            with db.engine.connect() as c:
                c = c.execution_options(isolation_level="AUTOCOMMIT")
                c.exec_driver_sql("VACUUM ANALYZE")
        else:
            with db.engine.connect() as c:
                c.exec_driver_sql("ANALYZE")
                c.commit()
        # Unaligned 7-day windows ending within the last hours of the data (worst case for edges).
        rng = random.Random(1)
        end0 = int(END.timestamp())
        starts = [end0 - 7 * 86400 - 60 * rng.randrange(0, 24 * 60) for _ in range(a.runs)]
        # Make every window lie inside the raw rows' span for the baseline.
        starts = [max(s, int(WINDOW_START.timestamp())) for s in starts]

        def window(s: int, end0: int = end0) -> tuple[int, int]:
            return s, min(s + 7 * 86400, end0)

        stats_query(db, source_id, *window(starts[0]))  # warm-up
        raw_query(db, source_id, *window(starts[0]))
        rollup_ms = timed(
            lambda s, db=db, source_id=source_id: stats_query(db, source_id, *window(s)),
            a.runs,
            starts,
        )
        raw_ms = timed(
            lambda s, db=db, source_id=source_id: raw_query(db, source_id, *window(s)),
            max(5, a.runs // 4),
            starts,
        )
        check = stats_query(db, source_id, int(WINDOW_START.timestamp()), end0)["groups"]
        raw = raw_query(db, source_id, int(WINDOW_START.timestamp()), end0)
        agree = all(check[k][0] == raw.get(k) for k in check) and len(check) == len(raw)
        print(
            f"RESULT stats db={name} records={a.records} query=7d,groupBy=pathname,interval=1h "
            f"p50_ms={statistics.median(rollup_ms):.1f} p95_ms={pct(rollup_ms, 0.95):.1f} max_ms={max(rollup_ms):.1f} "
            f"baseline_raw_scan(7d rows, no percentiles) p50_ms={statistics.median(raw_ms):.1f} p95_ms={pct(raw_ms, 0.95):.1f} "
            f"counts_agree_with_raw={agree}",
            flush=True,
        )
        # What the retention job then does with the default horizons: minute rows older than
        # 14 days go. The 7-day query reads the same rows as before.
        before = rollup_counts(db)
        t0 = time.perf_counter()
        deleted = thin_rollups(db, now=END, minute_days=14, hour_days=400)
        thinning_s = time.perf_counter() - t0
        after = rollup_counts(db)
        assert sum(before) - sum(after) == deleted
        thinned_ms = timed(
            lambda s, db=db, source_id=source_id: stats_query(db, source_id, *window(s)),
            a.runs,
            starts,
        )
        print(
            f"RESULT stats_thinned db={name} rollup_rows_before={sum(before)} rollup_rows_after={sum(after)} "
            f"({100 * sum(after) / sum(before):.0f} %) thinning_s={thinning_s:.0f} "
            f"query p50_ms={statistics.median(thinned_ms):.1f} p95_ms={pct(thinned_ms, 0.95):.1f}",
            flush=True,
        )
        db.dispose()


def rollup_counts(db: Database) -> tuple[int, int, int]:
    with db.read() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (traffic_rollups, traffic_rollup_latency, traffic_rollup_path_latency)
        )


if __name__ == "__main__":
    main()
