"""LLM pages: a request's LLM calls and trace waterfall (loaded into the record page), over
``llm.services`` like the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from logharbor.auth.deps import get_db
from logharbor.common.pagination import PageRequest
from logharbor.llm import services as llm_services
from logharbor.ui import session
from logharbor.ui.rendering import UIRoute, render

router = APIRouter(route_class=UIRoute, include_in_schema=False)

# A trace with more calls than this shows the first ones; the API pages through all of them.
MAX_CALLS = 100
MAX_DEPTH = 12
MIN_BAR_PERCENT = 0.4  # a 0 ms span still shows as a sliver


def waterfall(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item with its bar: left offset and width in percent of the trace's span, and its
    depth in the span tree (parents found by span id; a missing parent counts as a root)."""
    if not items:
        return []
    t0 = min(item["start"] for item in items)
    end = max(item["start"] + timedelta(milliseconds=item["durationMs"]) for item in items)
    total_ms = max((end - t0).total_seconds() * 1000, 0.001)
    by_span = {item["spanId"]: item for item in items if item["spanId"]}
    bars = []
    for item in items:
        depth, parent = 0, item["parentSpanId"]
        while parent in by_span and depth < MAX_DEPTH:
            depth += 1
            parent = by_span[parent]["parentSpanId"]
        offset_ms = (item["start"] - t0).total_seconds() * 1000
        left = 100 * offset_ms / total_ms
        width = max(100 * item["durationMs"] / total_ms, MIN_BAR_PERCENT)
        bars.append(
            {
                **item,
                "depth": depth,
                "offsetMs": offset_ms,
                "left": round(min(left, 100 - MIN_BAR_PERCENT), 3),
                "width": round(min(width, 100 - left), 3) if left < 100 else MIN_BAR_PERCENT,
            }
        )
    return bars


@router.get("/ui/sources/{source_id}/traces/{trace_id}")
def trace_fragment(request: Request, source_id: str, trace_id: str) -> Response:
    """The LLM calls of a trace and its waterfall, for the record page (htmx)."""
    principal = session.require_user(request)
    db = get_db(request)
    trace = llm_services.trace(db, principal, source_id, trace_id)
    calls = llm_services.list_generations(
        db,
        principal,
        source_id,
        llm_services.GenerationFilters(trace_id=trace_id),
        PageRequest(page=1, page_limit=MAX_CALLS),
    )
    context = {
        "source_id": trace["trafficSourceId"],
        "trace_id": trace["traceId"],
        "calls": calls["data"],
        "total_calls": calls["meta"]["totalItems"],
        "bars": waterfall(trace["items"]),
    }
    return render(request, "_trace.html", context)
