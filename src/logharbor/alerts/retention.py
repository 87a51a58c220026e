"""Retention: per traffic source, records older than ``retention_days`` are deleted.

Deletion goes in bounded batches, each its own short write transaction, so that ingestion (which
needs the same write lock on SQLite) never waits for more than one batch. A batch deletes
traffic records (http_traffic, core_logs) first and then their request/response rows (the
bodies) unless another record still points at them; standalone requests/responses past the
cutoff go too, and so do the LLM calls and other spans of traces (llm/). Rollups (stats) and
exceptions are aggregates and are kept, but thinned: minute and hour rollups past
``stats_minute_days`` / ``stats_hour_days`` go (see stats/retention.py).
Delivered or given-up webhook outbox rows are forgotten after ``webhook_outbox_keep_days``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from logharbor.alerts import queries
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database
from logharbor.db.tables import core_logs, generations, http_traffic, spans
from logharbor.llm import queries as llm_queries
from logharbor.stats.retention import prune_rollups

log = logging.getLogger("logharbor.retention")


@dataclass
class PruneReport:
    traffic: int = 0
    core_logs: int = 0
    requests: int = 0
    responses: int = 0
    outbox: int = 0
    # LLM calls and the other spans of traces, on their records' retention (llm/).
    generations: int = 0
    spans: int = 0
    # Minute and hour rollup rows past their horizons (stats/retention.py).
    rollups: int = 0
    batches: int = 0
    sources: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return (
            self.traffic
            + self.core_logs
            + self.requests
            + self.responses
            + self.generations
            + self.spans
        )


def _never() -> bool:
    return False


def prune_source(
    db: Database,
    source_id: str,
    cutoff: datetime,
    batch_size: int,
    report: PruneReport,
    should_stop: Callable[[], bool] = _never,
) -> None:
    for table in (http_traffic, core_logs):
        while True:
            with db.write() as conn:
                count, request_ids, response_ids = queries.delete_old_records(
                    conn, table, source_id, cutoff, batch_size
                )
                report.requests += queries.delete_payloads(conn, "request", request_ids)
                report.responses += queries.delete_payloads(conn, "response", response_ids)
            report.batches += 1
            if table is http_traffic:
                report.traffic += count
            else:
                report.core_logs += count
            if count < batch_size or should_stop():
                break
    _prune_traces(db, source_id, cutoff, batch_size, report, should_stop)
    for kind in ("request", "response"):
        while True:
            with db.write() as conn:
                count = queries.delete_old_orphan_payloads(
                    conn, kind, source_id, cutoff, batch_size
                )
            report.batches += 1
            if kind == "request":
                report.requests += count
            else:
                report.responses += count
            if count < batch_size or should_stop():
                break


def _prune_traces(
    db: Database,
    source_id: str,
    cutoff: datetime,
    batch_size: int,
    report: PruneReport,
    should_stop: Callable[[], bool],
) -> None:
    """LLM calls and other spans go with the records of their traces, in the same batches."""
    for table in (generations, spans):
        while True:
            with db.write() as conn:
                count = llm_queries.delete_old(conn, table, source_id, cutoff, batch_size)
            report.batches += 1
            if table is generations:
                report.generations += count
            else:
                report.spans += count
            if count < batch_size or should_stop():
                break


def prune(
    db: Database,
    *,
    batch_size: int = 1000,
    outbox_keep_days: int = 7,
    rollup_days: tuple[int, int] | None = None,
    now: datetime | None = None,
    should_stop: Callable[[], bool] = _never,
) -> PruneReport:
    """Apply every source's retention; ``should_stop`` is asked between batches (shutdown).

    ``rollup_days`` (minute days, hour days) also thins the statistics' rollups."""
    now = now or utcnow()
    report = PruneReport()
    with db.read() as conn:
        sources = queries.sources_with_retention(conn)
    for source in sources:
        if should_stop():
            return report
        cutoff = now - timedelta(days=source["retention_days"])
        prune_source(db, source["id"], cutoff, batch_size, report, should_stop)
        report.sources.append(source["id"])
    before = now - timedelta(days=outbox_keep_days)
    while True:
        with db.write() as conn:
            count = queries.prune_outbox(conn, before, batch_size)
        report.outbox += count
        if count < batch_size or should_stop():
            break
    # Last: the records a user asked to delete come before thinning statistics.
    if rollup_days is not None and not should_stop():
        report.rollups = prune_rollups(
            db,
            now=now,
            minute_days=rollup_days[0],
            hour_days=rollup_days[1],
            should_stop=should_stop,
        )
    if report.total or report.outbox or report.rollups:
        log.info(
            "retention: deleted %d traffic, %d core logs, %d requests, %d responses, "
            "%d LLM calls, %d spans, %d outbox, %d rollup rows",
            report.traffic,
            report.core_logs,
            report.requests,
            report.responses,
            report.generations,
            report.spans,
            report.outbox,
            report.rollups,
        )
    return report
