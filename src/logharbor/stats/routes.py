"""``GET /stats/:trafficSourceId``: counts, error rates and latency percentiles from the rollups
and ``GET /stats/:trafficSourceId/llm``: tokens and cost of LLM calls (both in
stats/services.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from logharbor.auth.deps import CurrentPrincipal, Db
from logharbor.common.routing import ArkynRoute
from logharbor.stats.schemas import (
    MAX_GROUPS,
    Interval,
    LlmGroupBy,
    LlmStatsOut,
    StatsOut,
    StatsQuery,
)
from logharbor.stats.services import llm_stats, source_stats

router = APIRouter(route_class=ArkynRoute, tags=["stats"])


@router.get(
    "/stats/{trafficSourceId}",
    response_model=StatsOut,
    summary="Traffic statistics: totals, time series and per-group percentiles",
)
def get_stats(
    trafficSourceId: str,
    query: Annotated[StatsQuery, Query()],
    db: Db,
    principal: CurrentPrincipal,
) -> StatsOut:
    return source_stats(db, principal, trafficSourceId, query)


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
    groupBy: LlmGroupBy | None = None,
    interval: Annotated[
        Interval | None, Query(description="default: chosen from the range")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_GROUPS, description="max groups, costliest first")
    ] = 100,
) -> LlmStatsOut:
    """Which route, model or prompt version costs most, and tokens and cost over time."""
    return llm_stats(
        db,
        principal,
        trafficSourceId,
        start_date=startDate,
        end_date=endDate,
        interval=interval,
        group_by=groupBy,
        limit=limit,
    )
