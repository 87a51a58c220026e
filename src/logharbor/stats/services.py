"""Statistics of one traffic source, for the API (``GET /stats/:trafficSourceId`` and
``/stats/:trafficSourceId/llm``) and the charts page alike: ``source_stats`` counts records,
errors and latencies, ``llm_stats`` the tokens and cost of LLM calls.

Never scans raw traffic: every figure comes from the minute/hour/day rollups written at ingest
(see rollups.py), so the cost depends on the number of keys and buckets, not on the records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from logharbor.auth.deps import Principal
from logharbor.common.errors import BadRequest
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database
from logharbor.stats import llm_queries, queries
from logharbor.stats.histogram import percentiles
from logharbor.stats.queries import epoch_points, to_datetime
from logharbor.stats.ranges import INTERVALS, checked_step, minute_bounds, parse_range
from logharbor.stats.schemas import (
    LLM_GROUP_BYS,
    MAX_GROUPS,
    Figures,
    Group,
    LlmFigures,
    LlmGroup,
    LlmPoint,
    LlmStatsOut,
    Point,
    StatsOut,
    StatsQuery,
    WithPercentiles,
)
from logharbor.stats.thinning import kept_from, stored_detail
from logharbor.traffic.access import Access, require_source


def _figures(fig: queries.Figures) -> Figures:
    return Figures(
        count=fig.count,
        errors=fig.errors,
        serverErrors=fig.server_errors,
        errorRate=fig.errors / fig.count if fig.count else 0.0,
        avgLatency=fig.latency_sum / fig.count if fig.count else None,
        minLatency=fig.latency_min,
        maxLatency=fig.latency_max,
    )


def _with_percentiles(fig: queries.Figures) -> WithPercentiles:
    p50, p95, p99 = percentiles(
        fig.histogram, (0.5, 0.95, 0.99), lowest=fig.latency_min, highest=fig.latency_max
    )
    return WithPercentiles(**_figures(fig).model_dump(), p50=p50, p95=p95, p99=p99)


def _rollups(db: Database, conn: Connection) -> queries.RollupSource:
    return queries.sql_rollups(conn) if db.events is None else queries.events_rollups(db.events)


def source_stats(db: Database, principal: Principal, source_id: str, query: StatsQuery) -> StatsOut:
    """Totals, a time series and per-group figures of one source over the query's range."""
    end = query.endDate or utcnow()
    start = query.startDate or end - timedelta(days=1)
    if start >= end:
        raise BadRequest(field_errors={"startDate": "startDate must be before endDate"})
    first, last = minute_bounds(start, end)
    filters = queries.Filters(
        domain_id=query.domainId,
        pathname_id=query.pathnameId,
        method=query.method,
        status_class=query.status_class,
    )
    group_by = query.groupBy
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
        source_id = source["id"]
        # Past the retention job's horizons only coarser rollups remain (stats/thinning.py).
        first, last, finest = stored_detail(first, last, kept_from(conn))
        interval, step = checked_step(query.interval, first, last, finest)
        points = list(queries.epoch_points(first, last, step))
        rollups = _rollups(db, conn)
        by_group = queries.grouped(rollups, source_id, first, last, group_by, filters)
        by_time = queries.series(rollups, source_id, first, last, step, filters)
        ordered = sorted(
            (k for k in by_group if k is not None), key=lambda k: (-by_group[k].count, str(k))
        )[: query.limit]
        names = queries.labels(conn, group_by, ordered) if group_by else {}

    totals = queries.Figures()
    for fig in by_group.values():
        totals.merge(fig)
    groups = [
        Group(key=str(key), **names.get(key, {}), **_with_percentiles(by_group[key]).model_dump())
        for key in (ordered if group_by else ())
    ]
    series = [
        Point(
            time=queries.to_datetime(p),
            **_figures(by_time.get(p, queries.Figures())).model_dump(),
        )
        for p in points
    ]
    return StatsOut(
        trafficSourceId=source_id,
        startDate=queries.to_datetime(first),
        endDate=queries.to_datetime(last),
        interval=interval,
        groupBy=group_by,
        totals=_with_percentiles(totals),
        series=series,
        groups=groups,
    )


@dataclass(frozen=True)
class PercentileSeries:
    """Latency percentiles per ``step`` seconds from ``times`` (epoch seconds); None: no traffic."""

    step: int
    times: list[int]
    p50: list[float | None]
    p95: list[float | None]
    p99: list[float | None]


def latency_percentile_series(
    db: Database,
    principal: Principal,
    source_id: str,
    first: datetime,
    last: datetime,
    *,
    max_points: int,
) -> PercentileSeries:
    """p50/p95/p99 over time, in at most ``max_points`` whole-minute steps: each point reads its
    own histogram, so the points are few."""
    start, end = int(first.timestamp()), int(last.timestamp())
    step = max(60, math.ceil((end - start) / max_points / 60) * 60)
    result = PercentileSeries(step=step, times=[], p50=[], p95=[], p99=[])
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
        rollups = _rollups(db, conn)
        for point in queries.epoch_points(start, end, step):
            groups = queries.grouped(
                rollups, source["id"], point, min(point + step, end), None, queries.Filters()
            )
            fig = groups.get(None)
            values: list[float | None] = [None, None, None]
            if fig is not None and fig.count:
                values = percentiles(
                    fig.histogram,
                    (0.5, 0.95, 0.99),
                    lowest=fig.latency_min,
                    highest=fig.latency_max,
                )
            result.times.append(point)
            result.p50.append(values[0])
            result.p95.append(values[1])
            result.p99.append(values[2])
    return result


# --- LLM calls -----------------------------------------------------------------------------------


def _llm_figures(fig: llm_queries.LlmFigures) -> dict[str, Any]:
    # PostgreSQL sums big integers as Decimal: the models below make them ints and floats.
    return {
        "calls": fig.calls,
        "failedCalls": fig.failed_calls,
        "inputTokens": fig.input_tokens,
        "outputTokens": fig.output_tokens,
        "cachedTokens": fig.cached_tokens,
        "cost": round(fig.cost, 10),
        "unpricedCalls": fig.unpriced_calls,
        "avgDurationMs": fig.duration_sum / fig.calls if fig.calls else None,
    }


def llm_stats(
    db: Database,
    principal: Principal,
    source_id: str,
    *,
    start_date: str | None = None,
    end_date: str | None = None,
    interval: str | None = None,
    group_by: str | None = None,
    limit: int = 100,
) -> LlmStatsOut:
    """Tokens and cost of LLM calls (from the LLM rollups, llm_rollups.py): totals, a time series
    and the costliest groups (by cost, then calls) of a range."""
    errors: dict[str, str] = {}
    start, end = parse_range(start_date, end_date, errors)
    if group_by is not None and group_by not in LLM_GROUP_BYS:
        errors["groupBy"] = "groupBy must be one of " + ", ".join(LLM_GROUP_BYS)
    if interval is not None and interval not in INTERVALS:
        errors["interval"] = "interval must be one of " + ", ".join(INTERVALS)
    if not 1 <= limit <= MAX_GROUPS:
        errors["limit"] = f"limit must be an integer from 1 to {MAX_GROUPS}"
    if not errors and start >= end:
        errors["startDate"] = "startDate must be before endDate"
    if errors:
        raise BadRequest(field_errors=errors)
    first, last = minute_bounds(start, end)
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
        # Past the retention job's horizons only coarser rollups remain (stats/thinning.py).
        first, last, finest = stored_detail(first, last, kept_from(conn))
        interval, step = checked_step(interval, first, last, finest)
        rollups = _rollups(db, conn)
        by_group = llm_queries.grouped(rollups, source["id"], first, last, group_by)
        by_time = llm_queries.series(rollups, source["id"], first, last, step)
        ordered = sorted(by_group, key=lambda k: (-by_group[k].cost, -by_group[k].calls, k))
        ordered = ordered[:limit]
        titles = (
            llm_queries.prompt_titles(conn, [key[0] for key in ordered])
            if group_by == "promptVersion"
            else {}
        )
    totals = llm_queries.LlmFigures()
    for fig in by_group.values():
        totals.merge(fig)
    groups = (
        [
            LlmGroup(
                **llm_queries.group_labels(group_by, key, titles), **_llm_figures(by_group[key])
            )
            for key in ordered
        ]
        if group_by
        else []
    )
    return LlmStatsOut(
        trafficSourceId=source["id"],
        startDate=to_datetime(first),
        endDate=to_datetime(last),
        interval=interval,
        groupBy=group_by,
        totals=LlmFigures(**_llm_figures(totals)),
        series=[
            LlmPoint(time=to_datetime(p), **_llm_figures(by_time.get(p, llm_queries.LlmFigures())))
            for p in epoch_points(first, last, step)
        ],
        groups=groups,
    )
