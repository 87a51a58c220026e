"""Job leases: a periodic job that one process of many must run takes the run with a row in
``job_leases``, so that workers and hosts sharing one database run it once per period.

A process claims the due run, renews its claim between units of work and releases it with the
next run's time. A process that dies stops renewing; once its claim expires another process
takes the run over, and the dead one, were it to wake, finds its claim gone (``HeldLease.lost``).
Clocks of the hosts are compared, so they should be roughly in sync.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, or_, select, update

from logharbor.db.bulk import upsertable_insert
from logharbor.db.engine import Database
from logharbor.db.tables import job_leases

log = logging.getLogger("logharbor.lease")


def holder_name() -> str:
    """Who holds a claim, for people reading ``job_leases``: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def _free(name: str, now: datetime) -> Any:
    return and_(
        job_leases.c.name == name,
        job_leases.c.next_run_at <= now,
        or_(job_leases.c.claimed_until.is_(None), job_leases.c.claimed_until < now),
    )


def claim(
    conn: Connection, name: str, now: datetime, until: datetime, token: str, holder: str
) -> bool:
    """Take the job's run if it is due and nobody holds an unexpired claim.

    The row is made on first use (racing first users all pass the INSERT, which does nothing for
    all but one); the UPDATE's row count then says who won: on PostgreSQL the loser's UPDATE
    waits for the winner's commit, re-checks the WHERE and matches nothing.
    """
    conn.execute(
        upsertable_insert(conn.dialect.name, job_leases)
        .values(name=name, next_run_at=now)
        .on_conflict_do_nothing(index_elements=[job_leases.c.name])
    )
    result = conn.execute(
        update(job_leases)
        .where(_free(name, now))
        .values(claim_token=token, claimed_by=holder, claimed_until=until)
    )
    return result.rowcount == 1


def renew(conn: Connection, name: str, token: str, until: datetime) -> bool:
    """Extend our claim; False when another process has taken the job over meanwhile."""
    result = conn.execute(
        update(job_leases)
        .where(job_leases.c.name == name, job_leases.c.claim_token == token)
        .values(claimed_until=until)
    )
    return result.rowcount == 1


def release(
    conn: Connection,
    name: str,
    token: str,
    *,
    next_run_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> bool:
    """Give the claim back; with ``next_run_at`` the run is done and the next one scheduled,
    without it the job stays due (an interrupted run that another process should resume)."""
    values: dict[str, Any] = {"claim_token": None, "claimed_by": None, "claimed_until": None}
    if next_run_at is not None:
        values.update(next_run_at=next_run_at, last_finished_at=finished_at)
    result = conn.execute(
        update(job_leases)
        .where(job_leases.c.name == name, job_leases.c.claim_token == token)
        .values(**values)
    )
    return result.rowcount == 1


def read(conn: Connection, name: str) -> RowMapping | None:
    return conn.execute(select(job_leases).where(job_leases.c.name == name)).mappings().first()


class HeldLease:
    """Our claim on a run, renewed every ``renew_after`` for another ``duration`` when asked
    ``lost()`` between units of work; ``lost()`` is True once another process has the run."""

    def __init__(
        self,
        db: Database,
        name: str,
        token: str,
        *,
        duration: timedelta,
        renew_after: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.name = name
        self.token = token
        self.duration = duration
        self.renew_after = renew_after
        self.clock = clock
        self.renewed_at = clock()
        self._lost = False

    def lost(self) -> bool:
        now = self.clock()
        if not self._lost and now - self.renewed_at >= self.renew_after:
            with self.db.write() as conn:
                self._lost = not renew(conn, self.name, self.token, now + self.duration)
            self.renewed_at = now
            if self._lost:
                log.warning("%s run taken over by another process; stopping this one", self.name)
        return self._lost
