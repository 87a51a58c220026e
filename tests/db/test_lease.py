"""Job leases: one holder per due run; an expired claim is taken over, and the old holder then
finds it has lost the run (renewing fails, and so does releasing)."""

from __future__ import annotations

from datetime import timedelta

from logharbor.common.timestamps import utcnow
from logharbor.db import lease
from logharbor.db.engine import Database

MINUTE = timedelta(minutes=1)


def test_one_holder_per_run_and_an_expired_claim_is_taken_over(bare_db: Database) -> None:
    now = utcnow()
    with bare_db.write() as conn:
        assert lease.claim(conn, "job", now, now + 5 * MINUTE, "a", "host:1")
        assert not lease.claim(conn, "job", now, now + 5 * MINUTE, "b", "host:2")
        assert lease.renew(conn, "job", "a", now + 6 * MINUTE)
        # Past the renewed claim, another holder takes the run over.
        later = now + 7 * MINUTE
        assert lease.claim(conn, "job", later, later + 5 * MINUTE, "b", "host:2")
        assert not lease.renew(conn, "job", "a", later + 5 * MINUTE)
        assert not lease.release(conn, "job", "a", next_run_at=later + 60 * MINUTE)
        row = lease.read(conn, "job")
    assert row is not None and (row["claim_token"], row["claimed_by"]) == ("b", "host:2")


def test_release_schedules_the_next_run_or_leaves_it_due(bare_db: Database) -> None:
    now = utcnow()
    with bare_db.write() as conn:
        assert lease.claim(conn, "job", now, now + MINUTE, "a", "host:1")
        # Released without a next run (an interrupted one), the run is due again at once.
        assert lease.release(conn, "job", "a")
        assert lease.claim(conn, "job", now, now + MINUTE, "b", "host:2")
        assert lease.release(conn, "job", "b", next_run_at=now + 60 * MINUTE, finished_at=now)
        assert not lease.claim(conn, "job", now + 59 * MINUTE, now + 61 * MINUTE, "c", "host:3")
        assert lease.claim(conn, "job", now + 60 * MINUTE, now + 61 * MINUTE, "c", "host:3")
        # Jobs are independent.
        assert lease.claim(conn, "other", now, now + MINUTE, "d", "host:1")
        row = lease.read(conn, "job")
    assert row is not None and row["last_finished_at"] == now


def test_a_held_lease_renews_and_notices_when_it_is_lost(bare_db: Database) -> None:
    clock_now = [utcnow()]
    start = clock_now[0]
    with bare_db.write() as conn:
        assert lease.claim(conn, "job", start, start + 5 * MINUTE, "a", "host:1")
    held = lease.HeldLease(
        bare_db, "job", "a", duration=5 * MINUTE, renew_after=MINUTE, clock=lambda: clock_now[0]
    )
    clock_now[0] = start + 2 * MINUTE
    assert not held.lost()
    with bare_db.read() as conn:
        row = lease.read(conn, "job")
    assert row is not None and row["claimed_until"] == start + 7 * MINUTE
    with bare_db.write() as conn:
        assert lease.claim(conn, "job", start + 8 * MINUTE, start + 13 * MINUTE, "b", "host:2")
    clock_now[0] = start + 9 * MINUTE
    assert held.lost()
