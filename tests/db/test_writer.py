"""Group commit: concurrent jobs share transactions, and one failing job does not sink others."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from fixtures.network import free_port
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database, make_engine
from logharbor.db.tables import users
from logharbor.db.writer import GroupCommitWriter, WriteTx


def _insert_user(email: str) -> Callable[[WriteTx], str]:
    def job(tx: WriteTx) -> str:
        now = utcnow()
        tx.conn.execute(
            insert(users).values(
                id=new_id(),
                email=email,
                name="x",
                password_hash="x",
                utc=0,
                created_at=now,
                updated_at=now,
            )
        )
        return email

    return job


def test_jobs_commit_together_and_fail_alone(database_url: str) -> None:
    db = Database(make_engine(database_url))
    writer = GroupCommitWriter(db)
    writer.start()
    try:
        futures = []
        barrier = threading.Barrier(8)

        def submit(n: int) -> None:
            barrier.wait()
            futures.append(writer.submit_nowait(_insert_user(f"u{n}@example.com")))

        threads = [threading.Thread(target=submit, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        duplicate = writer.submit_nowait(_insert_user("u0@example.com"))
        assert sorted(f.result(10) for f in futures) == sorted(
            f"u{n}@example.com" for n in range(8)
        )
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            duplicate.result(10)
        after = writer.run_sync(_insert_user("after@example.com"), timeout=10)
        assert after == "after@example.com"
    finally:
        writer.close()
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(users)).scalar_one() == 9
    assert writer.transactions <= writer.jobs
    db.dispose()


# --- crash safety: kill -9 right after the answers ----------------------------------------------


def _seed_user_and_source(database_url: str) -> tuple[str, str]:
    from logharbor.auth import queries as auth_queries
    from logharbor.db.tables import traffic_sources

    db = Database(make_engine(database_url))
    with db.write() as conn:
        user = auth_queries.create_user(
            conn, email="crash@example.com", name="c", password_hash="x"
        )
        source_id = new_id()
        now = utcnow()
        conn.execute(
            insert(traffic_sources).values(
                id=source_id,
                user_id=user["id"],
                name="crash",
                traffic_domain="https://api.example.com",
                created_at=now,
                updated_at=now,
            )
        )
    db.dispose()
    return str(user["id"]), source_id


def _start_server(database_url: str, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LOGHARBOR_DATABASE_URL": database_url,
        "LOGHARBOR_DATA_DIR": str(data_dir),
        "LOGHARBOR_SECRET_KEY": SECRET,
    }
    command = [sys.executable, "-m", "logharbor", "serve", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # The deadline only stops a broken start from hanging the suite; it is no speed limit.
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "logharbor serve never answered /health"
        if server.poll() is not None:
            raise AssertionError(f"server exited with {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)


SECRET = "crash-test-secret-that-is-long-enough"


@pytest.mark.slow
def test_acknowledged_records_survive_kill_9(database_url: str, tmp_path: Path) -> None:
    """Concurrent compose and batch requests; SIGKILL the whole server as soon as enough answers
    arrived; every record that was answered 201 is in the database after a restart."""
    from logharbor.auth.tokens import issue_token
    from logharbor.db.tables import http_traffic

    user_id, source_id = _seed_user_and_source(database_url)
    headers = {"Authorization": f"Bearer {issue_token(user_id, SECRET, 3600)}"}
    port = free_port()
    server = _start_server(database_url, tmp_path / "data", port)
    base = f"http://127.0.0.1:{port}"
    record = {
        "domainUrl": "https://api.example.com",
        "pathnameUrl": "/v1/orders",
        "status": 201,
        "method": "POST",
        "elapsedTime": 3.5,
        "requestHeaders": {},
        "responseHeaders": {},
    }
    acknowledged: set[str] = set()
    lock = threading.Lock()
    enough = threading.Event()

    def fire(worker: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            n = 0
            while True:
                n += 1
                try:
                    if worker % 2:
                        r = http.post(f"/http-traffic-record/{source_id}", json=record)
                        ids = [r.json()["id"]] if r.status_code == 201 else []
                    else:
                        batch = [{**record, "pathnameUrl": f"/v1/p{n % 7}"}] * 20
                        r = http.post(f"/http-traffic-record/{source_id}/batch", json=batch)
                        ids = [i["id"] for i in r.json()["items"]] if r.status_code == 201 else []
                except (httpx.TransportError, ValueError):
                    return  # the server is gone
                assert r.status_code == 201, r.text
                with lock:
                    acknowledged.update(ids)
                    if len(acknowledged) >= 600:
                        enough.set()

    threads = [threading.Thread(target=fire, args=(w,), daemon=True) for w in range(16)]
    for thread in threads:
        thread.start()
    enough.wait()
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    for thread in threads:
        thread.join()
    with lock:
        answered = set(acknowledged)
    assert len(answered) >= 600

    # Restart on the same database: it recovers and serves; then check every answered id.
    server = _start_server(database_url, tmp_path / "data", port)
    try:
        db = Database(make_engine(database_url))
        with db.read() as conn:
            stored = {i for (i,) in conn.execute(select(http_traffic.c.id))}
        db.dispose()
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    assert answered - stored == set()


def test_a_transient_failure_is_retried_and_a_real_one_is_not(database_url: str) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    db = Database(make_engine(database_url))
    writer = GroupCommitWriter(db)
    writer.start()
    calls = {"flaky": 0, "broken": 0}

    def flaky(tx: WriteTx) -> str:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
        return _insert_user("flaky@example.com")(tx)

    def broken(tx: WriteTx) -> str:
        calls["broken"] += 1
        raise ValueError("a bug, not contention")

    try:
        assert writer.run_sync(flaky, timeout=10) == "flaky@example.com"
        with pytest.raises(ValueError):
            writer.run_sync(broken, timeout=10)
    finally:
        writer.close()
    assert calls == {"flaky": 2, "broken": 1}
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(users)).scalar_one() == 1
    db.dispose()


def _wait_for_queue(writer: GroupCommitWriter, size: int) -> None:
    deadline = time.monotonic() + 10
    while writer.waiting < size:
        assert time.monotonic() < deadline, "the items never reached the writer"
        time.sleep(0.001)


def test_bulk_items_share_one_call_and_events_reach_the_sink(database_url: str) -> None:
    """A runner gets every waiting item of its kind in one call; an outcome that is an error
    fails its own item alone; a runner that raises rolls the group's first run back whole, and
    in the careful run that follows fails its own items, not the jobs or the other runners of
    the same transaction; what committed work published reaches ``on_events`` once, before the
    commit."""
    import asyncio

    from logharbor.common.errors import Forbidden

    db = Database(make_engine(database_url))
    delivered: list[Any] = []

    def sink(conn: Any, events: Any) -> None:
        delivered.append(list(events))

    writer = GroupCommitWriter(db, on_events=sink)
    writer.start()
    calls: list[tuple[list[str], bool]] = []

    def runner(
        tx: WriteTx, items: list[str], prepared: Any = None, careful: bool = False
    ) -> list[object]:
        calls.append((list(items), careful))
        outcomes: list[object] = []
        for email in items:
            if email == "refused":
                outcomes.append(Forbidden("not this one"))
            else:
                outcomes.append(_insert_user(email)(tx))
                tx.publish([email])
        return outcomes

    def broken_runner(
        tx: WriteTx, items: list[str], prepared: Any = None, careful: bool = False
    ) -> list[object]:
        tx.publish(["never delivered"])
        raise ValueError("a bug in a runner")

    def failing_job(tx: WriteTx) -> None:
        tx.publish(["rolled back"])
        raise ValueError("a failing job")

    gate, holding = threading.Event(), threading.Event()

    async def scenario() -> list[object]:
        # A job that holds the writer, so that every item below lands in one group.
        blocker = writer.submit_nowait(lambda tx: (holding.set(), gate.wait(10)))
        # Only once the writer runs the blocker is every item sure to wait behind it.
        await asyncio.to_thread(holding.wait, 10)
        emails = ["a@example.com", "refused", "b@example.com"]
        tasks = [asyncio.ensure_future(writer.run_bulk(runner, email)) for email in emails]
        tasks.append(asyncio.ensure_future(writer.run_bulk(broken_runner, "x")))
        tasks.append(asyncio.ensure_future(writer.run(failing_job)))
        tasks.append(asyncio.ensure_future(writer.run(_insert_user("job@example.com"))))
        await asyncio.to_thread(_wait_for_queue, writer, len(tasks))
        gate.set()
        await asyncio.wrap_future(blocker)
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        results = asyncio.run(scenario())
    finally:
        writer.close()
    items = ["a@example.com", "refused", "b@example.com"]
    assert calls == [(items, False), (items, True)]
    assert results[0] == "a@example.com" and results[2] == "b@example.com"
    assert isinstance(results[1], Forbidden)
    assert isinstance(results[3], ValueError) and isinstance(results[4], ValueError)
    assert results[5] == "job@example.com"
    assert delivered[-1] == ["a@example.com", "b@example.com"]
    with db.read() as conn:
        stored = set(conn.execute(select(users.c.email)).scalars())
    assert stored == {"a@example.com", "b@example.com", "job@example.com"}
    db.dispose()
