"""``GET /stats/:trafficSourceId``: counts, error rates and latency percentiles from the rollups.

Never scans raw traffic: every figure comes from the minute/hour/day rollups written at ingest
(see rollups.py), so the cost depends on the number of keys and buckets, not on the records.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from logharbor.auth.deps import CurrentPrincipal, Db
from logharbor.common.errors import BadRequest
from logharbor.common.ids import is_uuid
from logharbor.common.routing import ArkynRoute
from logharbor.stats import llm_service, queries
from logharbor.stats.histogram import percentiles
from logharbor.stats.ranges import INTERVALS, checked_step, minute_bounds, parse_range
from logharbor.stats.schemas import LlmStatsOut, StatsOut
from logharbor.stats.thinning import kept_from, stored_detail
from logharbor.traffic.access import Access, require_source

router = APIRouter(route_class=ArkynRoute, tags=["stats"])

MAX_GROUPS = 1000
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"}


def _figures(fig: queries.Figures) -> dict[str, Any]:
    return {
        "count": fig.count,
        "errors": fig.errors,
        "serverErrors": fig.server_errors,
        "errorRate": fig.errors / fig.count if fig.count else 0.0,
        "avgLatency": fig.latency_sum / fig.count if fig.count else None,
        "minLatency": fig.latency_min,
        "maxLatency": fig.latency_max,
    }


def _with_percentiles(fig: queries.Figures) -> dict[str, Any]:
    p50, p95, p99 = percentiles(
        fig.histogram, (0.5, 0.95, 0.99), lowest=fig.latency_min, highest=fig.latency_max
    )
    return {**_figures(fig), "p50": p50, "p95": p95, "p99": p99}


@router.get(
    "/stats/{trafficSourceId}",
    response_model=StatsOut,
    summary="Traffic statistics: totals, time series and per-group percentiles",
)
def get_stats(
    trafficSourceId: str,
    db: Db,
    principal: CurrentPrincipal,
    startDate: Annotated[str | None, Query(description="ISO-8601; default endDate - 24h")] = None,
    endDate: Annotated[str | None, Query(description="ISO-8601; default now")] = None,
    groupBy: Annotated[str | None, Query(description="pathname | domain | status | method")] = None,
    interval: Annotated[
        str | None, Query(description="1m | 5m | 15m | 1h | 1d; default auto")
    ] = None,
    pathnameId: str | None = None,
    domainId: str | None = None,
    method: str | None = None,
    status: Annotated[str | None, Query(description="status class: 2xx, 4xx, 5xx...")] = None,
    limit: Annotated[str | None, Query(description="max groups, by count (default 100)")] = None,
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    start, end = parse_range(startDate, endDate, errors)
    if groupBy is not None and groupBy not in queries.GROUP_COLUMNS:
        errors["groupBy"] = "groupBy must be one of pathname, domain, status, method"
    if interval is not None and interval not in INTERVALS:
        errors["interval"] = "interval must be one of " + ", ".join(INTERVALS)
    for name, raw_id in (("pathnameId", pathnameId), ("domainId", domainId)):
        if raw_id is not None and not is_uuid(raw_id):
            errors[name] = f"Invalid {name} format"
    if method is not None and method.upper() not in METHODS:
        errors["method"] = "Unknown HTTP method"
    status_class = None
    if status is not None:
        text = status.strip().lower()
        if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
            status_class = int(text[0])
        else:
            errors["status"] = "status must be a class such as 2xx or 5xx"
    group_limit = 100
    if limit is not None:
        # isdigit alone lets "²" through to int(), which refuses it.
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= MAX_GROUPS:
            errors["limit"] = f"limit must be an integer from 1 to {MAX_GROUPS}"
        else:
            group_limit = int(limit)
    if not errors and start >= end:
        errors["startDate"] = "startDate must be before endDate"
    if errors:
        raise BadRequest(field_errors=errors)

    first, last = minute_bounds(start, end)
    filters = queries.Filters(
        domain_id=domainId.lower() if domainId else None,
        pathname_id=pathnameId.lower() if pathnameId else None,
        method=method.upper() if method else None,
        status_class=status_class,
    )
    with db.read() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.READ)
        source_id = source["id"]
        # Past the retention job's horizons only coarser rollups remain (stats/thinning.py).
        first, last, finest = stored_detail(first, last, kept_from(conn))
        interval, step = checked_step(interval, first, last, finest)
        points = list(queries.epoch_points(first, last, step))
        by_group = queries.grouped(conn, source_id, first, last, groupBy, filters)
        by_time = queries.series(conn, source_id, first, last, step, filters)
        ordered = sorted(
            (k for k in by_group if k is not None), key=lambda k: (-by_group[k].count, str(k))
        )[:group_limit]
        names = queries.labels(conn, groupBy, ordered) if groupBy else {}

    totals = queries.Figures()
    for fig in by_group.values():
        totals.merge(fig)
    groups = []
    if groupBy:
        for key in ordered:
            groups.append(
                {"key": str(key), **names.get(key, {}), **_with_percentiles(by_group[key])}
            )
    series = [
        {"time": queries.to_datetime(p), **_figures(by_time.get(p, queries.Figures()))}
        for p in points
    ]
    return {
        "trafficSourceId": source_id,
        "startDate": queries.to_datetime(first),
        "endDate": queries.to_datetime(last),
        "interval": interval,
        "groupBy": groupBy,
        "totals": _with_percentiles(totals),
        "series": series,
        "groups": groups,
    }


@router.get(
    "/stats/{trafficSourceId}/llm",
    response_model=LlmStatsOut,
    summary="LLM calls: tokens and cost over time, per route, model or prompt version",
)
def get_llm_stats(
    trafficSourceId: str,
    db: Db,
    principal: CurrentPrincipal,
    startDate: Annotated[str | None, Query(description="ISO-8601; default endDate - 24h")] = None,
    endDate: Annotated[str | None, Query(description="ISO-8601; default now")] = None,
    groupBy: llm_service.GroupBy | None = None,
    interval: Annotated[
        llm_service.Interval | None, Query(description="default: chosen from the range")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=llm_service.MAX_GROUPS, description="max groups, costliest first")
    ] = 100,
) -> dict[str, Any]:
    """Which route, model or prompt version costs most, and tokens and cost over time."""
    return llm_service.llm_stats(
        db,
        principal,
        trafficSourceId,
        start_date=startDate,
        end_date=endDate,
        interval=interval,
        group_by=groupBy,
        limit=limit,
    )
