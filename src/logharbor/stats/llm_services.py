"""Tokens and cost of LLM calls over time, per route, model or prompt version, from the LLM
rollups (llm_rollups.py). The API route and the charts page both call ``llm_stats``."""

from __future__ import annotations

from typing import Any, Literal, get_args

from logharbor.auth.deps import Principal
from logharbor.common.errors import BadRequest
from logharbor.db.engine import Database
from logharbor.stats import llm_queries
from logharbor.stats.llm_queries import LlmFigures
from logharbor.stats.queries import epoch_points, to_datetime
from logharbor.stats.ranges import INTERVALS, checked_step, minute_bounds, parse_range
from logharbor.stats.thinning import kept_from, stored_detail
from logharbor.traffic.access import Access, require_source

GroupBy = Literal["route", "model", "promptVersion"]
Interval = Literal["1m", "5m", "15m", "1h", "1d"]
GROUP_BYS: tuple[str, ...] = get_args(GroupBy)
MAX_GROUPS = 1000


def figures_json(fig: LlmFigures) -> dict[str, Any]:
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
) -> dict[str, Any]:
    """Totals, a time series and the costliest groups (by cost, then calls) of a range."""
    errors: dict[str, str] = {}
    start, end = parse_range(start_date, end_date, errors)
    if group_by is not None and group_by not in GROUP_BYS:
        errors["groupBy"] = "groupBy must be one of " + ", ".join(GROUP_BYS)
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
        by_group = llm_queries.grouped(conn, source["id"], first, last, group_by)
        by_time = llm_queries.series(conn, source["id"], first, last, step)
        ordered = sorted(by_group, key=lambda k: (-by_group[k].cost, -by_group[k].calls, k))
        ordered = ordered[:limit]
        titles = (
            llm_queries.prompt_titles(conn, [key[0] for key in ordered])
            if group_by == "promptVersion"
            else {}
        )
    totals = LlmFigures()
    for fig in by_group.values():
        totals.merge(fig)
    groups: list[dict[str, Any]] = []
    if group_by:
        for key in ordered:
            labels = llm_queries.group_labels(group_by, key, titles)
            groups.append({**labels, **figures_json(by_group[key])})
    return {
        "trafficSourceId": source["id"],
        "startDate": to_datetime(first),
        "endDate": to_datetime(last),
        "interval": interval,
        "groupBy": group_by,
        "totals": figures_json(totals),
        "series": [
            {"time": to_datetime(p), **figures_json(by_time.get(p, LlmFigures()))}
            for p in epoch_points(first, last, step)
        ],
        "groups": groups,
    }
