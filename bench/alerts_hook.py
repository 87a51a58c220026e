# ruff: noqa: E501  (result lines read better unwrapped)
"""What alerts cost on the ingest path, and how fast an alert arrives.

1. ``alerts.hooks.on_traffic`` on batches of 500 events (90 % INFO, 8 % WARNING, 2 % FATAL),
   inside a write transaction, in four setups: no webhook, one WARNING webhook, three webhooks,
   and a FATAL flood (every event FATAL, one fingerprint, one webhook). Baseline, same run and
   database: inserting the same number of http_traffic-sized rows with one executemany.
2. Alert latency: commit of a FATAL record → receipt by a local HTTP receiver, with the default
   settings (poll 1 s, group window 2 s) and with poll 0.1 s / no group window.

Usage: ``python bench/alerts_hook.py [sqlite,postgresql]``
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import Column, Float, Integer, MetaData, String, Table

from common import databases, machine, now_text, seed
from logharbor.alerts import hooks
from logharbor.alerts.dispatcher import Dispatcher
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database, make_engine
from logharbor.db.tables import webhook_outbox, webhooks
from logharbor.ingest.events import TrafficEvent
from logharbor.settings import Settings

BATCH = 500
ROUNDS = 20


def make_events(source_id: str, flood: bool) -> list[TrafficEvent]:
    out = []
    for i in range(BATCH):
        status = 500 if flood or i % 50 == 0 else 404 if i % 12 == 0 else 200
        level = "FATAL" if status >= 500 else "WARNING" if status >= 400 else "INFO"
        out.append(
            TrafficEvent(
                kind="traffic",
                id=new_id(),
                traffic_source_id=source_id,
                domain_id=new_id(),
                domain="https://api.example.com",
                pathname_id=new_id(),
                pathname=f"/v1/orders/{i}",
                method="POST",
                status=status,
                level=level,
                elapsed_time=12.0,
                traffic_user_id=None,
                created_at=utcnow(),
                response_preview='{"message": "order 42 failed"}' if status >= 400 else "{}",
            )
        )
    return out


def add_webhook(
    db: Database, source_id: str, level: str, url: str = "https://example.com/x"
) -> None:
    now = utcnow()
    with db.write() as conn:
        conn.execute(
            webhooks.insert().values(
                id=new_id(),
                traffic_source_id=source_id,
                type="webhook",
                value=url,
                level=level,
                cooldown_seconds=0,
                secret="s",
                # Leased far ahead: this part measures ingest only, nothing is sent.
                claimed_until=None if url != "https://example.com/x" else now.replace(year=2100),
                created_at=now,
                updated_at=now,
            )
        )


def time_hook(db: Database, source_id: str, flood: bool) -> float:
    """Microseconds per event, median over rounds."""
    samples = []
    for _ in range(ROUNDS):
        events = make_events(source_id, flood)
        start = time.perf_counter()
        with db.write() as conn:
            hooks.on_traffic(conn, events)
        samples.append((time.perf_counter() - start) / BATCH * 1e6)
    return statistics.median(samples)


def time_baseline(db: Database) -> float:
    scratch = Table(
        "bench_scratch",
        MetaData(),
        Column("id", String(36), primary_key=True),
        Column("source", String(36)),
        Column("status", Integer),
        Column("method", String(10)),
        Column("level", String(10)),
        Column("elapsed", Float),
        Column("created", String(40)),
    )
    scratch.create(db.engine, checkfirst=True)
    samples = []
    for _ in range(ROUNDS):
        rows = [
            {
                "id": new_id(),
                "source": "s",
                "status": 200,
                "method": "GET",
                "level": "INFO",
                "elapsed": 1.0,
                "created": "x",
            }
            for _ in range(BATCH)
        ]
        start = time.perf_counter()
        with db.write() as conn:
            conn.execute(scratch.insert(), rows)
        samples.append((time.perf_counter() - start) / BATCH * 1e6)
    scratch.drop(db.engine)
    return statistics.median(samples)


def latency(url: str, source_id: str, poll: float, group: float, n: int = 8) -> list[float]:
    arrived: list[float] = []
    cond = threading.Condition()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            with cond:
                arrived.append(time.perf_counter())
                cond.notify_all()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_a: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    db = Database(make_engine(url))
    with db.write() as conn:
        conn.execute(webhook_outbox.delete())
        conn.execute(webhooks.delete())
    add_webhook(db, source_id, "FATAL", f"http://127.0.0.1:{server.server_address[1]}/h")
    settings = Settings(
        database_url=url,
        secret_key="x" * 40,
        webhook_allow_http=True,
        webhook_allow_private=True,
        webhook_poll_seconds=poll,
        webhook_group_seconds=group,
    )
    worker = Dispatcher(db, settings)
    worker.start()
    delays = []
    try:
        for i in range(n):
            # Start at a random phase of the poll cycle.
            time.sleep(poll * ((i * 0.37) % 1))
            ev = make_events(source_id, flood=True)[:1]
            with db.write() as conn:
                hooks.on_traffic(conn, ev)
            committed = time.perf_counter()
            with cond:
                cond.wait_for(lambda wanted=i + 1: len(arrived) >= wanted, 30)
            delays.append(arrived[i] - committed)
    finally:
        worker.stop()
        server.shutdown()
        server.server_close()
        db.dispose()
    return delays


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "sqlite,postgresql"
    print(f"# alerts_hook.py  {now_text()}  {machine()}")
    for name, url in databases(which):
        _, source_id, _ = seed(url)
        db = Database(make_engine(url))
        baseline = time_baseline(db)
        none = time_hook(db, source_id, flood=False)
        add_webhook(db, source_id, "WARNING")
        one = time_hook(db, source_id, flood=False)
        add_webhook(db, source_id, "FATAL")
        add_webhook(db, source_id, "INFO")
        three = time_hook(db, source_id, flood=False)
        db.dispose()
        _, flood_source, _ = seed(url)
        db = Database(make_engine(url))
        add_webhook(db, flood_source, "FATAL")
        flood = time_hook(db, flood_source, flood=True)
        with db.read() as conn:
            rows = conn.execute(
                webhook_outbox.select()
                .join(webhooks, webhooks.c.id == webhook_outbox.c.webhook_id)
                .where(webhooks.c.traffic_source_id == flood_source)
            ).fetchall()
        db.dispose()
        print(f"RESULT {name} baseline_insert_us_per_row={baseline:.1f}")
        for label, value in (
            ("no_webhook", none),
            ("one_webhook", one),
            ("three_webhooks", three),
            ("fatal_flood", flood),
        ):
            print(
                f"RESULT {name} hook_{label}_us_per_event={value:.1f} ratio_to_baseline={value / baseline:.2f}"
            )
        counted = sum(row._mapping["count"] for row in rows)
        print(
            f"RESULT {name} fatal_flood_outbox_rows={len(rows)} holding count={counted} for {ROUNDS * BATCH} events"
        )
        for poll, group in ((1.0, 2.0), (0.1, 0.0)):
            delays = latency(url, source_id, poll, group)
            print(
                f"RESULT {name} alert_latency poll={poll}s group={group}s "
                f"p50={statistics.median(delays):.2f}s max={max(delays):.2f}s (n={len(delays)})"
            )


if __name__ == "__main__":
    main()
