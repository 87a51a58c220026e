"""Rollup thinning: minute rollups older than ``stats_minute_days`` and hour rollups older than
``stats_hour_days`` are deleted; day rollups are kept (traffic and LLM rollups alike, so one
horizon per resolution holds for both).

A query reads whole days from day rows, the ragged hours around them from hour rows and only the
ragged minutes at its two ends from minute rows, so fine rows are most of what the rollups
weigh (at 10M records over 30 days: 4.7M rollup rows and 26M histogram rows, mostly minutes)
while older ones serve only minute-exact edges and minute series. Past their horizon they are
deleted, one source and one hour (one day) of buckets per transaction, so that ingest never
waits long for the write lock. Day rows are kept for ever.

The horizon is recorded in ``stats_horizons`` *before* rows go, so that a query never takes a
deleted minute for a minute without traffic: ranges that start (or end) past it are widened to
the hour or the day, and series finer than the detail kept there are refused
(``stored_detail``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from itertools import product
from typing import Any

from sqlalchemy import Connection, Table, case, delete, func, select

from logharbor.db.bulk import upsertable_insert
from logharbor.db.clickhouse import EventsClient
from logharbor.db.engine import Database
from logharbor.db.events_schema import ROLLUP_TABLES, alter_local_tables, merged
from logharbor.db.tables import (
    llm_rollups,
    stats_horizons,
    traffic_rollup_latency,
    traffic_rollup_path_latency,
    traffic_rollups,
    traffic_sources,
)
from logharbor.stats.rollups import DAY, HOUR, MINUTE

# Tables thinned together, each group after the oldest bucket of its first table.
_GROUPS = (
    (traffic_rollups, traffic_rollup_latency, traffic_rollup_path_latency),
    (llm_rollups,),
)
# How many seconds of one source's buckets one delete transaction takes, per resolution.
_SLICE = {MINUTE: HOUR, HOUR: DAY}


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def horizons(now: datetime, minute_days: int, hour_days: int) -> dict[int, int]:
    """Epoch seconds from which minute and hour rows are kept; aligned to the next coarser
    resolution, so that the coarser rows cover exactly what the finer ones no longer do."""
    minute_from = _epoch(now) - minute_days * DAY
    hour_from = _epoch(now) - max(hour_days, minute_days) * DAY
    return {MINUTE: minute_from - minute_from % HOUR, HOUR: hour_from - hour_from % DAY}


def kept_from(conn: Connection) -> dict[int, int]:
    """Per resolution, the oldest bucket start (epoch seconds) still stored; absent: all kept."""
    rows = conn.execute(select(stats_horizons.c.resolution, stats_horizons.c.kept_from))
    return {resolution: _epoch(start) for resolution, start in rows}


def _record_horizons(conn: Connection, cutoffs: dict[int, int]) -> None:
    statement = upsertable_insert(conn.dialect.name, stats_horizons)
    stored = stats_horizons.c.kept_from
    # Never moved back: rows deleted by a run with shorter horizons do not come back.
    statement = statement.on_conflict_do_update(
        index_elements=["resolution"],
        set_={
            "kept_from": case(
                (statement.excluded.kept_from > stored, statement.excluded.kept_from),
                else_=stored,
            )
        },
    )
    conn.execute(
        statement,
        [{"resolution": res, "kept_from": _at(epoch)} for res, epoch in sorted(cutoffs.items())],
    )


def _never() -> bool:
    return False


def thin_rollups(
    db: Database,
    *,
    now: datetime,
    minute_days: int,
    hour_days: int,
    should_stop: Callable[[], bool] = _never,
) -> int:
    """Delete minute and hour rows past their horizons; returns the number of rows deleted."""
    cutoffs = horizons(now, minute_days, hour_days)
    with db.write() as conn:
        _record_horizons(conn, cutoffs)
    deleted = 0
    if db.events is not None:
        deleted += _thin_events(db.events, cutoffs)
    with db.read() as conn:
        sources = list(conn.execute(select(traffic_sources.c.id)).scalars())
    for source_id in sources:
        for (resolution, cutoff), tables in product(sorted(cutoffs.items()), _GROUPS):
            while not should_stop():
                with db.write() as conn:
                    removed = _delete_oldest_slice(conn, tables, source_id, resolution, _at(cutoff))
                if removed is None:
                    break
                deleted += removed
    return deleted


def _thin_events(client: EventsClient, cutoffs: dict[int, int]) -> int:
    """The same thinning for rollups on ClickHouse, for every source at once: whole months of a
    resolution go by partition, the ragged month at the horizon by one mutation."""
    deleted = 0
    for (resolution, cutoff), table in product(sorted(cutoffs.items()), ROLLUP_TABLES):
        cutoff_ms = cutoff * 1000
        months = client.query(
            f"SELECT toYYYYMM(toDateTime(intDiv(bucket_start, 1000))) AS month, "
            f"count() AS n FROM {merged(table)} "
            f"WHERE resolution = {resolution} AND bucket_start < {cutoff_ms} GROUP BY month"
        )
        for month in months:
            deleted += int(month["n"])
            if _whole_month_before(month, cutoff_ms):
                alter_local_tables(
                    client, table, f"DROP PARTITION ({resolution}, {int(month['month'])})"
                )
            else:
                alter_local_tables(
                    client,
                    table,
                    f"DELETE WHERE resolution = {resolution} AND bucket_start < {cutoff_ms}",
                )
    client.wait_for_mutations()
    return deleted


def _whole_month_before(month: dict[str, Any], cutoff_ms: int) -> bool:
    """Whether every bucket of that month is before the cutoff (the month ended before it)."""
    year, number = divmod(int(month["month"]), 100)
    following = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return _epoch(following) * 1000 <= cutoff_ms


def _delete_oldest_slice(
    conn: Connection,
    tables: tuple[Table, ...],
    source_id: str,
    resolution: int,
    cutoff: datetime,
) -> int | None:
    """Delete the source's oldest slice of ``resolution`` rows before ``cutoff``; None when
    there is none (gaps in the traffic cost one query each, not one per empty slice)."""
    r = tables[0].c
    oldest = conn.execute(
        select(func.min(r.bucket_start)).where(
            r.traffic_source_id == source_id, r.resolution == resolution, r.bucket_start < cutoff
        )
    ).scalar()
    if oldest is None:
        return None
    until = min(_at(_epoch(oldest) + _SLICE[resolution]), cutoff)
    removed = 0
    for table in tables:
        c = table.c
        result = conn.execute(
            delete(table).where(
                c.traffic_source_id == source_id,
                c.resolution == resolution,
                c.bucket_start >= oldest,
                c.bucket_start < until,
            )
        )
        removed += result.rowcount
    return removed


def stored_detail(first: int, last: int, kept: dict[int, int]) -> tuple[int, int, int]:
    """``(first, last, finest)``: the range widened to the detail stored at its ends, and the
    finest resolution stored over all of it (a series interval must not be finer)."""
    finest = MINUTE
    minute_from, hour_from = kept.get(MINUTE), kept.get(HOUR)
    if hour_from is not None and first < hour_from:
        first, finest = first - first % DAY, DAY
    elif minute_from is not None and first < minute_from:
        first, finest = first - first % HOUR, HOUR
    if hour_from is not None and last < hour_from:
        last = -(-last // DAY) * DAY
    elif minute_from is not None and last < minute_from:
        last = -(-last // HOUR) * HOUR
    return first, last, finest
