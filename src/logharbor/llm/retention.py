"""LLM calls and the other spans of traces follow their traffic source's retention: past the
source's ``retention_days`` they are deleted, in the same bounded batches as its records
(traffic/retention.py), or on ClickHouse as its records are there (by day partitions where it
can, ``traffic/clickhouse_retention.py``). The retention job (``logharbor/retention_job.py``)
runs both."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from logharbor.db.engine import Database
from logharbor.db.tables import generation_details, generations, spans
from logharbor.llm import queries
from logharbor.traffic import clickhouse_retention
from logharbor.traffic.retention import event_cutoffs


@dataclass
class TracesPruned:
    generations: int = 0
    spans: int = 0
    # Details events whose call's span never came.
    details: int = 0
    batches: int = 0


def prune_traces(
    db: Database,
    source_id: str,
    cutoff: datetime,
    batch_size: int,
    report: TracesPruned,
    should_stop: Callable[[], bool],
) -> None:
    """Delete the source's LLM calls and spans older than ``cutoff``; ``should_stop`` is asked
    between batches."""
    for table in (generations, spans, generation_details):
        while True:
            with db.write() as conn:
                count = queries.delete_old(conn, table, source_id, cutoff, batch_size)
            report.batches += 1
            if table is generations:
                report.generations += count
            elif table is spans:
                report.spans += count
            else:
                report.details += count
            if count < batch_size or should_stop():
                break


def prune_event_traces(db: Database, now: datetime, report: TracesPruned) -> None:
    """The LLM calls and spans on ClickHouse (``LOGHARBOR_EVENTS_URL``), every source's at
    once; nothing without it."""
    if db.events is None:
        return
    tables = clickhouse_retention.TRACE_TABLES
    deleted = clickhouse_retention.prune(db.events, event_cutoffs(db, now), tables)
    report.generations += deleted["generations"]
    report.spans += deleted["spans"]
    report.batches += 1
