"""The charts page's LLM section: tokens and cost over time, and the costliest routes, models
and prompt versions, from ``stats.services.llm_stats`` (the API's function, same tenancy).
Loaded into the charts page as a fragment, so the traffic charts never wait for it."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response

from logharbor.auth.deps import get_db
from logharbor.common.errors import BadRequest
from logharbor.common.timestamps import iso, utcnow
from logharbor.stats.schemas import LlmGroup, LlmStatsOut
from logharbor.stats.services import llm_stats
from logharbor.ui import session
from logharbor.ui.charts import CHART_RANGES
from logharbor.ui.rendering import UIRoute, render

router = APIRouter(route_class=UIRoute, include_in_schema=False)

TOP_GROUPS = 10
# Table heading and the group's label fields, per llm_stats groupBy.
GROUPS = {
    "route": "Cost per route",
    "model": "Cost per model",
    "promptVersion": "Cost per prompt version",
}


@router.get("/ui/sources/{source_id}/charts/llm")
def llm_section(request: Request, source_id: str, range: str = "1h") -> Response:
    if range not in CHART_RANGES:
        raise BadRequest(field_errors={"range": "Unknown time range"})
    principal = session.require_user(request)
    db = get_db(request)
    _, seconds, interval = CHART_RANGES[range]
    end = utcnow()
    window = {"start_date": iso(end - timedelta(seconds=seconds)), "end_date": iso(end)}
    # Costliest first, as llm_stats orders its groups.
    tables: dict[str, list[LlmGroup]] = {}
    result: LlmStatsOut | None = None
    for group_by in GROUPS:
        result = llm_stats(
            db,
            principal,
            source_id,
            **window,
            interval=interval,
            group_by=group_by,
            limit=TOP_GROUPS,
        )
        tables[group_by] = result.groups
    assert result is not None  # GROUPS is not empty
    series = result.series
    data = {
        "t": [int(point.time.timestamp()) for point in series],
        "inputTokens": [point.inputTokens for point in series],
        "outputTokens": [point.outputTokens for point in series],
        "cost": [point.cost for point in series],
    }
    context = {
        "source_id": result.trafficSourceId,
        "totals": result.totals,
        "tables": tables,
        "titles": GROUPS,
        "max_cost": {
            key: max((g.cost for g in rows), default=0) or 1 for key, rows in tables.items()
        },
        "llm_chart_data": data,
    }
    return render(request, "_llm_charts.html", context)
