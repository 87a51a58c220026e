"""Reading the rollups. Nothing here touches raw traffic rows.

A time range (minute-aligned) is split into segments, each read at the coarsest resolution that
fits it: whole days from the day rows, the ragged hours around them from the hour rows, and the
ragged minutes at both ends from the minute rows. A 7-day query thus reads about 7 + 46 + 118
buckets per key at worst instead of 10,080.

Percentiles come from the latency histograms. Without a method or status filter, and grouped by
nothing, pathname or domain, they are read from the per-pathname histogram (summed over methods and
status classes at ingest): at 10M records, summing the full histogram's ~300k rows for a 7-day
window took SQLite's GROUP BY sort alone over 100 ms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, or_, select

from logharbor.db import events_schema
from logharbor.db.clickhouse import EventsClient
from logharbor.db.clickhouse_sql import fetch
from logharbor.db.events_schema import FOLDED_FIGURES
from logharbor.db.tables import (
    domains,
    llm_rollups,
    pathnames,
    traffic_rollup_latency,
    traffic_rollup_path_latency,
    traffic_rollups,
)
from logharbor.stats.rollups import DAY, RESOLUTIONS

GROUP_COLUMNS = {
    "pathname": "pathname_id",
    "domain": "domain_id",
    "method": "method",
    "status": "status_class",
}


def floor_epoch(epoch: int, step: int) -> int:
    return epoch - epoch % step


def segments(start: int, end: int, coarsest: int = DAY) -> list[tuple[int, int, int]]:
    """Cover [start, end) (epoch seconds, minute-aligned) with (resolution, from, to) pieces."""
    out: list[tuple[int, int, int]] = []

    def cover(a: int, b: int, levels: tuple[int, ...]) -> None:
        if a >= b:
            return
        step, finer = levels[-1], levels[:-1]
        if not finer:
            out.append((step, a, b))
            return
        first = -(-a // step) * step
        last = floor_epoch(b, step)
        if first >= last:
            cover(a, b, finer)
            return
        cover(a, first, finer)
        out.append((step, first, last))
        cover(last, b, finer)

    cover(start, end, tuple(r for r in RESOLUTIONS if r <= coarsest))
    return out


@dataclass
class Figures:
    count: int = 0
    errors: int = 0
    server_errors: int = 0
    latency_sum: float = 0.0
    latency_min: float | None = None
    latency_max: float | None = None
    histogram: dict[int, int] = field(default_factory=dict)

    def add(self, count: int, errors: int, server_errors: int, total: float) -> None:
        self.count += count
        self.errors += errors
        self.server_errors += server_errors
        self.latency_sum += total

    def widen(self, lowest: float | None, highest: float | None) -> None:
        if lowest is not None and (self.latency_min is None or lowest < self.latency_min):
            self.latency_min = lowest
        if highest is not None and (self.latency_max is None or highest > self.latency_max):
            self.latency_max = highest

    def merge(self, other: Figures) -> None:
        self.add(other.count, other.errors, other.server_errors, other.latency_sum)
        self.widen(other.latency_min, other.latency_max)
        for bucket, n in other.histogram.items():
            self.histogram[bucket] = self.histogram.get(bucket, 0) + n


@dataclass(frozen=True)
class RollupSource:
    """Where the rollups are read, and how a statement runs there: the SQL database's tables,
    or ClickHouse's (same columns) when events live there."""

    rollups: Any
    latency: Any
    path_latency: Any
    run: Callable[[Any], Iterable[Sequence[Any]]]
    # ClickHouse answers one statement over all of a range's segments (an OR of key ranges,
    # which its primary key reads as such) faster than one per segment: each statement has a
    # fixed cost of several milliseconds there. The SQL databases keep one statement per
    # segment, each a plain range of their primary-key index.
    one_statement: bool = False
    # Tokens and cost of LLM calls (llm_queries.py).
    llm: Any = llm_rollups
    # ClickHouse keeps the main rollup's figures as aggregate states (events_schema), read with
    # -Merge functions.
    folded: bool = False
    # ClickHouse sums each group's histogram into a pair of arrays (sumMap): a row per group
    # where the SQL databases answer a row per bucket. For 50 pathnames that is 50 rows instead
    # of ~5,000, whose parsing and summing took ~10 ms of a 7-day stats call at 10M records on
    # chDB (bench/RESULTS.md).
    summed_maps: bool = False

    def figure(self, column: str) -> Any:
        """The aggregate of one of the main rollup's figures over the rows a statement reads."""
        aggregate = FOLDED_FIGURES[column]
        return getattr(func, aggregate + "Merge" if self.folded else aggregate)(
            self.rollups.c[column]
        )

    def server_errors(self) -> Any:
        """Requests answered 5xx among the rows a statement reads."""
        c = self.rollups.c
        if self.folded:
            return func.sumMergeIf(c.count, c.status_class == 5)
        return func.sum(case((c.status_class == 5, c.count), else_=0))

    def figures(self) -> list[Any]:
        """count, errors, server errors, latency sum, min and max."""
        return [
            self.figure("count"),
            self.figure("errors"),
            self.server_errors(),
            self.figure("latency_sum"),
            self.figure("latency_min"),
            self.figure("latency_max"),
        ]


def sql_rollups(conn: Connection) -> RollupSource:
    return RollupSource(
        traffic_rollups, traffic_rollup_latency, traffic_rollup_path_latency, conn.execute
    )


def events_rollups(client: EventsClient) -> RollupSource:
    def run(statement: Any) -> list[tuple[Any, ...]]:
        return [tuple(row.values()) for row in fetch(client, statement)]

    return RollupSource(
        events_schema.traffic_rollups,
        events_schema.traffic_rollup_latency,
        events_schema.traffic_rollup_path_latency,
        run,
        llm=events_schema.llm_rollups,
        one_statement=True,
        folded=True,
        summed_maps=True,
    )


@dataclass(frozen=True)
class Filters:
    domain_id: str | None = None
    pathname_id: str | None = None
    method: str | None = None
    status_class: int | None = None


def _window(table: Any, seg: tuple[int, int, int]) -> ColumnElement[bool]:
    resolution, a, b = seg
    c = table.c
    return and_(
        c.resolution == resolution,
        c.bucket_start >= datetime.fromtimestamp(a, UTC),
        c.bucket_start < datetime.fromtimestamp(b, UTC),
    )


def _wheres(
    source: RollupSource,
    table: Any,
    source_id: str,
    segs: Sequence[tuple[int, int, int]],
    f: Filters,
) -> list[list[ColumnElement[bool]]]:
    """The WHERE clauses of the statements that read ``segs``: one per segment, or one for all
    of them (``RollupSource.one_statement``). The segments are disjoint, so the sums agree."""
    c = table.c
    clauses: list[ColumnElement[bool]] = [c.traffic_source_id == source_id]
    if f.domain_id is not None:
        clauses.append(c.domain_id == f.domain_id)
    if f.pathname_id is not None:
        clauses.append(c.pathname_id == f.pathname_id)
    if f.method is not None:
        clauses.append(c.method == f.method)
    if f.status_class is not None:
        clauses.append(c.status_class == f.status_class)
    if not segs:
        return []
    if source.one_statement:
        return [[*clauses, or_(*(_window(table, seg) for seg in segs))]]
    return [[*clauses, _window(table, seg)] for seg in segs]


_PER_PATHNAME = (None, "pathname", "domain")


def grouped(
    source: RollupSource,
    source_id: str,
    start: int,
    end: int,
    group_by: str | None,
    filters: Filters,
) -> dict[Any, Figures]:
    """Figures (with histograms) per group over [start, end); one group (None) without group_by."""
    r, h = source.rollups, source.latency
    if filters.method is None and filters.status_class is None and group_by in _PER_PATHNAME:
        h = source.path_latency
    groups: dict[Any, Figures] = {}
    segs = segments(start, end)
    r_key = r.c[GROUP_COLUMNS[group_by]] if group_by else None
    h_key = h.c[GROUP_COLUMNS[group_by]] if group_by else None
    for where in _wheres(source, r, source_id, segs, filters):
        query = select(*([r_key] if r_key is not None else []), *source.figures()).where(*where)
        if r_key is not None:
            query = query.group_by(r_key)
        for row in source.run(query):
            values = tuple(row)
            key = values[0] if r_key is not None else None
            count, errors, server, total, lowest, highest = values[-6:]
            if not count:
                continue
            fig = groups.setdefault(key, Figures())
            fig.add(int(count), int(errors), int(server), float(total))
            fig.widen(lowest, highest)
    h_keys = [h_key] if h_key is not None else []
    for where in _wheres(source, h, source_id, segs, filters):
        if source.summed_maps:
            summed = func.sumMap(func.array(h.c.bucket), func.array(h.c.count))
            for row in source.run(select(*h_keys, summed).where(*where).group_by(*h_keys)):
                values = tuple(row)
                buckets, counts = values[-1]
                _add_counts(
                    groups, values[0] if h_keys else None, zip(buckets, counts, strict=True)
                )
            continue
        hquery = select(*h_keys, h.c.bucket, func.sum(h.c.count)).where(*where)
        for row in source.run(hquery.group_by(*h_keys, h.c.bucket)):
            values = tuple(row)
            _add_counts(groups, values[0] if h_keys else None, [(values[-2], values[-1])])
    return groups


def _add_counts(groups: dict[Any, Figures], key: Any, counts: Iterable[tuple[int, Any]]) -> None:
    hist = groups.setdefault(key, Figures()).histogram
    for bucket, n in counts:
        hist[bucket] = hist.get(bucket, 0) + int(n)


def series(
    source: RollupSource,
    source_id: str,
    start: int,
    end: int,
    interval: int,
    filters: Filters,
) -> dict[int, Figures]:
    """Counts per interval point (epoch seconds of the point's start), without histograms."""
    r = source.rollups
    coarsest = max(res for res in RESOLUTIONS if interval % res == 0)
    points: dict[int, Figures] = {}
    for where in _wheres(source, r, source_id, segments(start, end, coarsest), filters):
        query = select(r.c.bucket_start, *source.figures()).where(*where).group_by(r.c.bucket_start)
        for bucket_start, count, errors, server, total, lowest, highest in source.run(query):
            epoch = int(bucket_start.timestamp())
            fig = points.setdefault(floor_epoch(epoch, interval), Figures())
            fig.add(int(count), int(errors), int(server), float(total))
            fig.widen(lowest, highest)
    return points


def labels(conn: Connection, group_by: str, keys: list[Any]) -> dict[Any, dict[str, Any]]:
    """Display fields for group keys (pathname and domain values, status class text)."""
    if group_by == "pathname" and keys:
        query = (
            select(pathnames.c.id, pathnames.c.value, domains.c.id, domains.c.value)
            .join(domains, domains.c.id == pathnames.c.domain_id)
            .where(pathnames.c.id.in_(keys))
        )
        return {
            pid: {"pathnameId": pid, "pathname": pv, "domainId": did, "domain": dv}
            for pid, pv, did, dv in conn.execute(query)
        }
    if group_by == "domain" and keys:
        domain_query = select(domains.c.id, domains.c.value).where(domains.c.id.in_(keys))
        return {did: {"domainId": did, "domain": dv} for did, dv in conn.execute(domain_query)}
    if group_by == "status":
        return {k: {"status": f"{k}xx"} for k in keys}
    if group_by == "method":
        return {k: {"method": k} for k in keys}
    return {}


def epoch_points(start: int, end: int, interval: int) -> Iterator[int]:
    point = floor_epoch(start, interval)
    while point < end:
        yield point
        point += interval


def to_datetime(epoch: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=epoch)
