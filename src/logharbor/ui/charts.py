"""Charts of one traffic source: requests per minute, error rate and latency percentiles over
time, and the slowest and most failing routes. Every figure comes from the stats feature (its
rollups), through its own route function or query functions, after its own tenancy check.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from logharbor.auth.deps import get_db
from logharbor.common.errors import BadRequest
from logharbor.common.timestamps import iso, utcnow
from logharbor.stats import queries as stats_queries
from logharbor.stats import routes as stats_routes
from logharbor.stats.histogram import percentiles
from logharbor.stats.ranges import INTERVALS
from logharbor.traffic.access import Access, require_source
from logharbor.ui import session
from logharbor.ui.rendering import UIRoute, render

router = APIRouter(route_class=UIRoute, include_in_schema=False)

# range -> (seconds, interval of the count series)
CHART_RANGES: dict[str, tuple[str, int, str]] = {
    "1h": ("Last hour", 3600, "1m"),
    "6h": ("Last 6 hours", 6 * 3600, "5m"),
    "24h": ("Last 24 hours", 86400, "15m"),
    "7d": ("Last 7 days", 7 * 86400, "1h"),
    "30d": ("Last 30 days", 30 * 86400, "1d"),
}
# Percentiles need one histogram read per point, so that chart uses at most this many points.
MAX_PERCENTILE_POINTS = 48
TOP_ROUTES = 10


def source_for(request: Request, source_id: str) -> tuple[Any, dict[str, Any]]:
    principal = session.require_user(request)
    with get_db(request).read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
    return principal, dict(source)


def stats(
    request: Request, source_id: str, seconds: int, *, interval: str | None, group_by: str | None
) -> dict[str, Any]:
    """The stats API's answer for the last ``seconds``, through its own function."""
    principal = session.require_user(request)
    end = utcnow()
    result: dict[str, Any] = stats_routes.get_stats(
        trafficSourceId=source_id,
        db=get_db(request),
        principal=principal,
        startDate=iso(end - timedelta(seconds=seconds)),
        endDate=iso(end),
        groupBy=group_by,
        interval=interval,
        limit=str(stats_routes.MAX_GROUPS) if group_by else None,
    )
    return result


def _percentile_series(request: Request, source_id: str, first: int, last: int) -> dict[str, Any]:
    principal = session.require_user(request)
    step = max(60, math.ceil((last - first) / MAX_PERCENTILE_POINTS / 60) * 60)
    points = list(stats_queries.epoch_points(first, last, step))
    times: list[int] = []
    p50: list[float | None] = []
    p95: list[float | None] = []
    p99: list[float | None] = []
    with get_db(request).read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
        for point in points:
            groups = stats_queries.grouped(
                conn, source["id"], point, min(point + step, last), None, stats_queries.Filters()
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
            times.append(point)
            p50.append(values[0])
            p95.append(values[1])
            p99.append(values[2])
    return {"t": times, "p50": p50, "p95": p95, "p99": p99, "step": step}


@router.get("/ui/sources/{source_id}/charts")
def charts_page(request: Request, source_id: str, range: str = "1h") -> Response:
    if range not in CHART_RANGES:
        raise BadRequest(field_errors={"range": "Unknown time range"})
    _, source = source_for(request, source_id)
    label, seconds, interval = CHART_RANGES[range]
    result = stats(request, source["id"], seconds, interval=interval, group_by="pathname")
    first = int(result["startDate"].timestamp())
    last = int(result["endDate"].timestamp())
    step_minutes = INTERVALS[result["interval"]] / 60
    series = result["series"]
    data = {
        "t": [int(point["time"].timestamp()) for point in series],
        "rpm": [point["count"] / step_minutes for point in series],
        "errorRate": [
            round(point["errorRate"] * 100, 2) if point["count"] else None for point in series
        ],
        "latency": _percentile_series(request, source["id"], first, last),
    }
    groups = result["groups"]
    slowest = sorted(groups, key=lambda g: -(g["p95"] or 0))[:TOP_ROUTES]
    failing = sorted(
        (g for g in groups if g["errors"]), key=lambda g: (-g["errors"], -g["errorRate"])
    )[:TOP_ROUTES]
    totals = result["totals"]
    context = {
        "source": source,
        "tab": "charts",
        "ranges": {key: value[0] for key, value in CHART_RANGES.items()},
        "range": range,
        "range_label": label,
        "totals": totals,
        "rpm": totals["count"] / (seconds / 60),
        "slowest": slowest,
        "failing": failing,
        "max_p95": max((g["p95"] or 0 for g in slowest), default=0) or 1,
        "max_errors": max((g["errors"] for g in failing), default=0) or 1,
        "chart_data": data,
        "interval": result["interval"],
    }
    return render(request, "charts.html", context)
