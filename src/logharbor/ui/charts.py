"""Charts of one traffic source: requests per minute, error rate and latency percentiles over
time, and the slowest and most failing routes. Every figure comes from the stats feature's
services (its rollups), after their own tenancy check.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from logharbor.auth.deps import get_db
from logharbor.common.errors import BadRequest
from logharbor.common.timestamps import utcnow
from logharbor.stats.ranges import INTERVALS
from logharbor.stats.schemas import MAX_GROUPS, Interval, StatsQuery
from logharbor.stats.services import latency_percentile_series, source_stats
from logharbor.traffic.access import Access, require_source
from logharbor.ui import session
from logharbor.ui.rendering import UIRoute, render

router = APIRouter(route_class=UIRoute, include_in_schema=False)

# range -> (label, seconds, interval of the count series)
CHART_RANGES: dict[str, tuple[str, int, Interval]] = {
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


@router.get("/ui/sources/{source_id}/charts")
def charts_page(request: Request, source_id: str, range: str = "1h") -> Response:
    if range not in CHART_RANGES:
        raise BadRequest(field_errors={"range": "Unknown time range"})
    principal, source = source_for(request, source_id)
    label, seconds, interval = CHART_RANGES[range]
    db = get_db(request)
    end = utcnow()
    query = StatsQuery(
        startDate=end - timedelta(seconds=seconds),
        endDate=end,
        interval=interval,
        groupBy="pathname",
        limit=MAX_GROUPS,
    )
    result = source_stats(db, principal, source["id"], query)
    step_minutes = INTERVALS[result.interval] / 60
    series = result.series
    latency = latency_percentile_series(
        db,
        principal,
        source["id"],
        result.startDate,
        result.endDate,
        max_points=MAX_PERCENTILE_POINTS,
    )
    data = {
        "t": [int(point.time.timestamp()) for point in series],
        "rpm": [point.count / step_minutes for point in series],
        "errorRate": [round(point.errorRate * 100, 2) if point.count else None for point in series],
        "latency": {
            "t": latency.times,
            "p50": latency.p50,
            "p95": latency.p95,
            "p99": latency.p99,
            "step": latency.step,
        },
    }
    groups = result.groups
    slowest = sorted(groups, key=lambda g: -(g.p95 or 0))[:TOP_ROUTES]
    failing = sorted((g for g in groups if g.errors), key=lambda g: (-g.errors, -g.errorRate))[
        :TOP_ROUTES
    ]
    totals = result.totals
    context = {
        "source": source,
        "tab": "charts",
        "ranges": {key: value[0] for key, value in CHART_RANGES.items()},
        "range": range,
        "range_label": label,
        "totals": totals,
        "rpm": totals.count / (seconds / 60),
        "slowest": slowest,
        "failing": failing,
        "max_p95": max((g.p95 or 0 for g in slowest), default=0) or 1,
        "max_errors": max((g.errors for g in failing), default=0) or 1,
        "chart_data": data,
        "interval": result.interval,
    }
    return render(request, "charts.html", context)
