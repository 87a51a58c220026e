"""The retention job: one run prunes records, then old webhook outbox rows (rollup thinning is in
stats/test_thinning.py); the app runs it on its own.

Across processes: one run per period whoever polls, decided by a lease row in the database; a dead
holder's run is taken over, and a holder that lost its claim stops. Each "process" is a
RetentionJob over its own engine on the same database, with no app running beside it. Time is a
clock the test moves, so periods and lease expiry need no waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from fixtures.records import ago, count_records, emit, event, insert_records
from fixtures.sources import Source, insert_source
from fixtures.users import insert_user
from fixtures.waiting import WAIT
from logharbor.app import create_app
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db import lease
from logharbor.db.engine import Database, make_engine
from logharbor.db.tables import (
    job_leases,
    webhook_outbox,
    webhooks,
)
from logharbor.retention_job import JOB_NAME, LEASE, RetentionJob, prune
from logharbor.settings import Settings


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.on_read: Callable[[], None] | None = None

    def __call__(self) -> datetime:
        if self.on_read is not None:
            self.on_read()
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def processes(settings: Settings) -> Iterator[tuple[Database, Database]]:
    """Two connections pools on one database, as two worker processes (or hosts) have."""
    url = settings.resolved_database_url()
    first, second = Database(make_engine(url)), Database(make_engine(url))
    yield first, second
    first.dispose()
    second.dispose()


@pytest.fixture
def short_lived(bare_db: Database) -> Source:
    """A source whose records are kept one day, in a database no app runs on."""
    return insert_source(bare_db, insert_user(bare_db).id, retention_days=1)


def lease_row(db: Database) -> dict[str, object]:
    with db.read() as conn:
        row = lease.read(conn, JOB_NAME)
    assert row is not None
    return dict(row)


def test_two_processes_prune_once_per_period(
    settings: Settings, processes: tuple[Database, Database], short_lived: Source
) -> None:
    db_a, db_b = processes
    clock = Clock(utcnow())
    a = RetentionJob(db_a, settings, clock=clock)
    b = RetentionJob(db_b, settings, clock=clock)
    interval = timedelta(minutes=settings.retention_interval_minutes)
    insert_records(db_a, short_lived.id, 3, at=ago(days=2))

    first = a.run_due()
    assert first is not None and first.records.traffic == 3
    assert b.run_due() is None  # same period: already done by the other process
    assert a.run_due() is None  # nor does the same process run it twice
    released = lease_row(db_a)
    assert released["claim_token"] is None
    assert released["next_run_at"] == clock.now + interval

    insert_records(db_b, short_lived.id, 2, at=ago(days=2))
    clock.advance(interval / 2)
    assert a.run_due() is None and b.run_due() is None
    assert count_records(db_a, short_lived.id) == 2

    clock.advance(interval / 2)
    second = b.run_due()  # any process may do the next period's run
    assert second is not None and second.records.traffic == 2
    assert a.run_due() is None
    assert count_records(db_a, short_lived.id) == 0


def _run_at_once(job: RetentionJob, start: threading.Barrier, reports: list[object]) -> None:
    start.wait()
    reports.append(job.run_due())


def test_racing_processes_one_wins_each_period(
    settings: Settings, processes: tuple[Database, Database], short_lived: Source
) -> None:
    clock = Clock(utcnow())
    jobs = [RetentionJob(db, settings, clock=clock) for db in processes]
    interval = timedelta(minutes=settings.retention_interval_minutes)
    for _ in range(8):
        insert_records(processes[0], short_lived.id, 2, at=ago(days=2))
        start = threading.Barrier(len(jobs))
        reports: list[object] = []
        threads = [
            threading.Thread(target=_run_at_once, args=(job, start, reports)) for job in jobs
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(reports) == len(jobs)
        winners = [report for report in reports if report is not None]
        assert len(winners) == 1, reports
        assert count_records(processes[0], short_lived.id) == 0
        clock.advance(interval)


def test_a_dead_holders_run_is_taken_over_when_its_lease_expires(
    settings: Settings, processes: tuple[Database, Database], short_lived: Source
) -> None:
    db_a, db_b = processes
    start = utcnow()
    clock = Clock(start)
    insert_records(db_a, short_lived.id, 4, at=ago(days=2))
    # A process claimed the run and died before finishing it.
    with db_a.write() as conn:
        assert lease.claim(conn, JOB_NAME, start, start + LEASE, "dead", "gone:1")
    survivor = RetentionJob(db_b, settings, clock=clock)

    assert survivor.run_due() is None
    clock.advance(LEASE - timedelta(seconds=1))
    assert survivor.run_due() is None  # the claim still holds
    assert count_records(db_a, short_lived.id) == 4

    clock.advance(timedelta(seconds=2))
    report = survivor.run_due()
    assert report is not None and report.records.traffic == 4
    assert count_records(db_a, short_lived.id) == 0
    # Were the dead process to wake up now, it would find its claim gone and stop.
    with db_a.write() as conn:
        assert not lease.renew(conn, JOB_NAME, "dead", clock.now + LEASE)
    assert lease_row(db_a)["next_run_at"] == clock.now + timedelta(
        minutes=settings.retention_interval_minutes
    )


def test_a_holder_that_lost_its_claim_stops_and_leaves_the_new_holders_lease(
    settings: Settings, processes: tuple[Database, Database], short_lived: Source
) -> None:
    db_a, db_b = processes
    clock = Clock(utcnow())
    slow = settings.model_copy(update={"retention_batch_size": 1})
    job = RetentionJob(db_a, slow, clock=clock)
    insert_records(db_a, short_lived.id, 6, at=ago(days=2))
    reads = 0

    def time_passes_and_another_process_takes_over() -> None:
        # Each look at the clock is a stall longer than the lease; on the fifth (after two
        # batches), another process finds the claim expired and takes the run over.
        nonlocal reads
        reads += 1
        clock.advance(LEASE + timedelta(seconds=1))
        if reads == 5:
            with db_b.write() as conn:
                conn.execute(update(job_leases).values(claim_token="other", claimed_by="other:2"))

    clock.on_read = time_passes_and_another_process_takes_over
    report = job.run_due()
    clock.on_read = None

    assert report is not None
    assert 0 < report.records.traffic < 6  # it stopped between batches
    assert count_records(db_a, short_lived.id) == 6 - report.records.traffic
    row = lease_row(db_a)
    assert (row["claim_token"], row["claimed_by"]) == ("other", "other:2")


def test_old_delivered_outbox_rows_are_forgotten(bare_db: Database, bare_source: Source) -> None:
    db, source_id = bare_db, bare_source.id
    now = utcnow()
    with db.write() as conn:
        conn.execute(
            webhooks.insert().values(
                id=new_id(),
                traffic_source_id=source_id,
                type="webhook",
                value="https://example.com/x",
                level="INFO",
                cooldown_seconds=0,
                secret="s",
                created_at=now,
                updated_at=now,
            )
        )
    emit(db, [event(source_id), event(source_id, status=502)])
    with db.write() as conn:
        first = (
            conn.execute(select(webhook_outbox.c.id).order_by(webhook_outbox.c.id))
            .scalars()
            .first()
        )
        conn.execute(
            update(webhook_outbox)
            .where(webhook_outbox.c.id == first)
            .values(state="delivered", created_at=now - timedelta(days=30))
        )
    report = prune(db, outbox_keep_days=7)
    assert report.outbox == 1
    with db.read() as conn:
        states = list(conn.execute(select(webhook_outbox.c.state)).scalars())
    assert states == ["pending"]  # an undelivered row is never pruned


def test_the_app_runs_the_job_on_its_own(settings: Settings, bare_db: Database) -> None:
    owner = insert_user(bare_db)
    fast = settings.model_copy(update={"retention_interval_minutes": 0.005})
    with TestClient(create_app(fast)) as app_client:
        db: Database = app_client.app.state.db  # type: ignore[attr-defined]
        source_id = insert_source(db, owner.id, retention_days=1).id
        insert_records(db, source_id, 3, at=ago(days=2))

        def pruned_and_released() -> bool:
            # The rows go before the run releases its lease: wait for both.
            with db.read() as conn:
                row = lease.read(conn, JOB_NAME)
            if row is None:
                return False
            return row["claim_token"] is None and row["last_finished_at"] is not None

        deadline = time.monotonic() + WAIT
        while count_records(db, source_id) > 0 or not pruned_and_released():
            assert time.monotonic() < deadline, "retention job did not run"
            time.sleep(0.05)
