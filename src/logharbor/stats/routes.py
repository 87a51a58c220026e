"""``GET /stats/:trafficSourceId``: counts, error rates and latency percentiles from the rollups.

Never scans raw traffic: every figure comes from the minute/hour/day rollups written at ingest
(see rollups.py), so the cost depends on the number of keys and buckets, not on the records.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from logharbor.auth.deps import CurrentPrincipal, Db
from logharbor.common.errors import BadRequest
from logharbor.common.ids import is_uuid
from logharbor.common.routing import ArkynRoute
from logharbor.common.timestamps import iso, parse_iso, utcnow
from logharbor.stats import queries
from logharbor.stats.histogram import percentiles
from logharbor.stats.retention import kept_from, stored_detail
from logharbor.stats.rollups import HOUR
from logharbor.stats.schemas import StatsOut
from logharbor.traffic.access import Access, require_source

router = APIRouter(route_class=ArkynRoute, tags=["stats"])

INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
MAX_POINTS = 2000
MAX_GROUPS = 1000
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"}


def _auto_interval(seconds: int, finest: int = 60) -> str:
    for name, step in (("1m", 60), ("5m", 300), ("1h", 3600)):
        if step >= finest and seconds // step <= 300:
            return name
    return "1d"


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
    end = utcnow()
    start = end - timedelta(days=1)
    for name, raw in (("endDate", endDate), ("startDate", startDate)):
        if raw is None or raw == "":
            continue
        try:
            value = parse_iso(raw)
        except ValueError:
            errors[name] = f"{name} must be an ISO-8601 date-time"
            continue
        if not EARLIEST <= value <= LATEST:
            # The range is widened to whole minutes (days, past the rollup horizons) and a
            # missing start is a day before the end: dates at the calendar's ends overflow.
            errors[name] = f"{name} must be from {iso(EARLIEST)} to {iso(LATEST)}"
            continue
        if name == "endDate":
            end = value
            if startDate is None or startDate == "":
                start = end - timedelta(days=1)
        else:
            start = value
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

    first = queries.floor_epoch(int(start.timestamp()), 60)
    last = -(-int(end.timestamp() + (end.microsecond > 0)) // 60) * 60
    filters = queries.Filters(
        domain_id=domainId.lower() if domainId else None,
        pathname_id=pathnameId.lower() if pathnameId else None,
        method=method.upper() if method else None,
        status_class=status_class,
    )
    with db.read() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.READ)
        source_id = source["id"]
        # Past the retention job's horizons only coarser rollups remain (stats/retention.py).
        first, last, finest = stored_detail(first, last, kept_from(conn))
        interval = interval or _auto_interval(last - first, finest)
        step = INTERVALS[interval]
        if step < finest:
            kept = "Per-minute figures" if finest == HOUR else "Per-hour figures"
            raise BadRequest(
                field_errors={
                    "interval": f"{kept} this old are no longer kept: use interval "
                    f"{_auto_interval(0, finest)} or coarser, or a later startDate"
                }
            )
        points = list(queries.epoch_points(first, last, step))
        if len(points) > MAX_POINTS:
            raise BadRequest(
                field_errors={
                    "interval": f"{len(points)} points; at most {MAX_POINTS}: use a wider interval"
                }
            )
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
