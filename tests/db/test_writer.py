"""Group commit: concurrent jobs share transactions, and one failing job does not sink others."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, insert, select

from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database, make_engine
from logharbor.db.tables import users
from logharbor.db.writer import GroupCommitWriter


def _insert_user(email: str):  # type: ignore[no-untyped-def]
    def job(conn):  # type: ignore[no-untyped-def]
        now = utcnow()
        conn.execute(
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
