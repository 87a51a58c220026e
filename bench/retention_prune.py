# ruff: noqa: E501  (result lines read better unwrapped)
"""Retention: how fast old records go, and how long each batch holds the write lock.

N old records (http_traffic + request + response with ~2 KB bodies each) are pruned by
``retention_job.prune`` in batches of 1,000. Reported: records/s and the longest single batch
transaction (the longest an ingest could wait for the lock). Baseline, same run: the same rows
deleted by one unbounded transaction (three DELETE ... WHERE created_at < cutoff statements),
whose duration is how long an unbatched delete would block ingestion.

Usage: ``python bench/retention_prune.py [sqlite,postgresql] [N]``
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import delete, insert, select, update

from common import databases, machine, now_text, seed
from logharbor import retention_job
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database, make_engine
from logharbor.db.tables import (
    domains,
    http_traffic,
    pathnames,
    requests,
    responses,
    traffic_sources,
)

BODY = '"' + "x" * 2000 + '"'


def parents(db: Database, source_id: str) -> tuple[str, str]:
    old = utcnow() - timedelta(days=30)
    domain_id, pathname_id = new_id(), new_id()
    with db.write() as conn:
        conn.execute(
            insert(domains).values(
                id=domain_id,
                traffic_source_id=source_id,
                value="https://api.example.com",
                protocol="HTTPS",
                created_at=old,
            )
        )
        conn.execute(
            insert(pathnames).values(
                id=pathname_id,
                traffic_source_id=source_id,
                domain_id=domain_id,
                value="/v1/orders",
                created_at=old,
            )
        )
    return domain_id, pathname_id


def fill(db: Database, source_id: str, domain_id: str, pathname_id: str, n: int) -> None:
    old = utcnow() - timedelta(days=30)
    for start in range(0, n, 2000):
        reqs, resps, rows = [], [], []
        for _ in range(min(2000, n - start)):
            rq, rs = new_id(), new_id()
            payload = {
                "traffic_source_id": source_id,
                "headers": {"a": "b"},
                "body": BODY,
                "body_preview": "x" * 200,
                "body_size": 2002,
                "body_truncated": False,
                "created_at": old,
            }
            reqs.append({"id": rq, **payload, "query_params": None})
            resps.append({"id": rs, **payload})
            rows.append(
                {
                    "id": new_id(),
                    "traffic_source_id": source_id,
                    "domain_id": domain_id,
                    "pathname_id": pathname_id,
                    "status": 200,
                    "method": "GET",
                    "level": "INFO",
                    "elapsed_time": 3.0,
                    "traffic_user_id": None,
                    "request_id": rq,
                    "response_id": rs,
                    "created_at": old,
                }
            )
        with db.write() as conn:
            conn.execute(insert(requests), reqs)
            conn.execute(insert(responses), resps)
            conn.execute(insert(http_traffic), rows)


class TimedDatabase(Database):
    """Records how long each write transaction lasts."""

    def __init__(self, url: str) -> None:
        super().__init__(make_engine(url))
        self.longest = 0.0
        self.transactions = 0

    def write(self):  # type: ignore[no-untyped-def, override]
        from contextlib import contextmanager

        parent = super().write

        @contextmanager
        def timed():  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            with parent() as conn:
                yield conn
            self.longest = max(self.longest, time.perf_counter() - start)
            self.transactions += 1

        return timed()


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "sqlite,postgresql"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    print(f"# retention_prune.py  {now_text()}  {machine()}  N={n}")
    for name, url in databases(which):
        _, source_id, _ = seed(url)
        db = TimedDatabase(url)
        with db.write() as conn:
            conn.execute(
                update(traffic_sources)
                .where(traffic_sources.c.id == source_id)
                .values(retention_days=7)
            )
        domain_id, pathname_id = parents(db, source_id)
        # Baseline: one unbounded transaction.
        fill(db, source_id, domain_id, pathname_id, n)
        cutoff = utcnow() - timedelta(days=7)
        start = time.perf_counter()
        with db.write() as conn:
            conn.execute(
                delete(http_traffic).where(
                    http_traffic.c.traffic_source_id == source_id,
                    http_traffic.c.created_at < cutoff,
                )
            )
            conn.execute(
                delete(requests).where(
                    requests.c.traffic_source_id == source_id, requests.c.created_at < cutoff
                )
            )
            conn.execute(
                delete(responses).where(
                    responses.c.traffic_source_id == source_id, responses.c.created_at < cutoff
                )
            )
        unbounded = time.perf_counter() - start
        # Batched prune.
        fill(db, source_id, domain_id, pathname_id, n)
        db.longest, db.transactions = 0.0, 0
        start = time.perf_counter()
        report = retention_job.prune(db, batch_size=1000)
        batched = time.perf_counter() - start
        with db.read() as conn:
            left = conn.execute(select(http_traffic.c.id).limit(1)).first()
            assert left is None and report.records.traffic == n and report.records.requests == n, (
                report
            )
        db.dispose()
        print(
            f"RESULT {name} batched_prune records={n} seconds={batched:.2f} records_per_s={n / batched:,.0f} transactions={db.transactions} longest_batch_ms={db.longest * 1000:.0f}"
        )
        print(
            f"RESULT {name} baseline_unbounded_delete seconds={unbounded:.2f} records_per_s={n / unbounded:,.0f} lock_held_ms={unbounded * 1000:.0f}"
        )


if __name__ == "__main__":
    main()
