"""Traffic pages: the traffic explorer (filters, live table) and one record's full exchange.

Reads go through the traffic feature: its tenancy check (``access.require_source``), its filter
parser (the API's own query-string rules) and its joined record query.
"""

from __future__ import annotations

import json
import shlex
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from sqlalchemy import Connection

from logharbor.auth.deps import Principal, get_db
from logharbor.common.pagination import PageRequest
from logharbor.traffic import filters as traffic_filters
from logharbor.traffic import services as traffic_services
from logharbor.traffic.access import Access, require_source
from logharbor.traffic.normalize import LEVELS, METHODS
from logharbor.ui import session
from logharbor.ui.ranges import PRESETS, parse_range
from logharbor.ui.rendering import UIRoute, render

router = APIRouter(route_class=UIRoute, include_in_schema=False)

PAGE_SIZE = 50
# The explorer opens on the last 24 hours, as Datadog's and Sentry's do: the page and its count
# then read one day of a source however much it has stored (on ClickHouse at 10M records, tens
# of milliseconds against most of a second for all time). "All time" stays one choice away, and
# the API without startDate still lists everything.
DEFAULT_RANGE = "24h"
FILTER_KEYS = (
    "range",
    "startDate",
    "endDate",
    "method",
    "status",
    "level",
    "domain",
    "pathname",
    "q",
)


def readable_source(conn: Connection, source_id: str, principal: Principal) -> dict[str, Any]:
    return dict(require_source(conn, source_id, principal, Access.READ))


def _filter_values(request: Request) -> dict[str, str]:
    params = request.query_params
    return {key: params.get(key, "").strip() for key in FILTER_KEYS}


def _records(request: Request, source_id: str) -> dict[str, Any]:
    principal = session.require_user(request)
    values = _filter_values(request)
    span = parse_range(
        values["range"], values["startDate"], values["endDate"], default=DEFAULT_RANGE
    )
    values["range"] = span.key  # so the form shows, and the links keep, the range in force
    parsed = traffic_filters.traffic_filters(
        method=values["method"] or None,
        status=values["status"] or None,
        level=values["level"] or None,
        domain=values["domain"] or None,
        pathname=values["pathname"] or None,
        startDate=span.start_iso or None,
        endDate=span.end_iso or None,
        q=values["q"] or None,
    )
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page = 1
    db = get_db(request)
    with db.read() as conn:
        source = readable_source(conn, source_id, principal)
    # The API's own list: same filters, same tenancy check, same JSON.
    listing = traffic_services.list_records(
        db,
        principal,
        source["id"],
        PageRequest(page=page, page_limit=PAGE_SIZE),
        traffic_filters.SortRequest(None, None),
        parsed,
    )
    domain_list = traffic_services.list_domains(
        db,
        principal,
        source["id"],
        PageRequest(page=1, page_limit=100),
        traffic_filters.SortRequest("value", "asc"),
    )
    records = listing["data"]
    total = listing["meta"]["totalItems"]
    domain_values = [d["value"] for d in domain_list["data"]]
    query = {k: v for k, v in values.items() if v}
    return {
        "source": source,
        "records": records,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "filters": values,
        "query": query,
        "domains": domain_values,
    }


def _query_string(query: dict[str, Any], **changes: Any) -> str:
    merged = {**query, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


@router.get("/ui/sources/{source_id}")
def explorer(request: Request, source_id: str) -> Response:
    context = _records(request, source_id)
    context.update(
        tab="explorer",
        methods=METHODS,
        levels=LEVELS,
        presets={key: label for key, (label, _) in PRESETS.items()},
        qs=_query_string,
    )
    return render(request, "explorer.html", context)


@router.get("/ui/sources/{source_id}/records")
def records_fragment(request: Request, source_id: str) -> Response:
    """The table alone, polled by htmx so the explorer updates live."""
    context = _records(request, source_id)
    context["qs"] = _query_string
    response = render(request, "_records.html", context)
    if request.query_params.get("push"):
        # A filter change: keep the address bar shareable (the explorer URL, not this one).
        query = _query_string(context["query"])
        target = f"/ui/sources/{source_id}" + (f"?{query}" if query else "")
        response.headers["HX-Push-Url"] = target
    return response


def _parse_document(value: Any) -> Any:
    """Headers and bodies may arrive as JSON text; show them as the structure they hold."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "[", '"'):
            try:
                return json.loads(text)
            except ValueError:
                return value
    return value


def _header_items(value: Any) -> list[tuple[str, str]]:
    parsed = _parse_document(value)
    if isinstance(parsed, dict):
        return [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in parsed.items()]
    return []


def _pretty(value: Any) -> tuple[str, bool]:
    """The body as display text, and whether it is a JSON object/array (shown as a tree)."""
    parsed = _parse_document(value)
    if parsed is None:
        return "", False
    if isinstance(parsed, dict | list):
        return json.dumps(parsed, indent=2, ensure_ascii=False), True
    if isinstance(parsed, str):
        return parsed, False
    return json.dumps(parsed), False


def curl_command(record: dict[str, Any]) -> str:
    """The request as a curl command line (masked secrets stay masked)."""
    request = record.get("request") or {}
    url = record["domain"].rstrip("/") + record["pathname"]
    params = _parse_document(request.get("queryParams"))
    if isinstance(params, dict) and params:
        url += "?" + urlencode(
            {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        )
    parts = ["curl", "-X", record["method"], shlex.quote(url)]
    for name, value in _header_items(request.get("headers")):
        if name.lower() in ("content-length", "host"):
            continue
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    body = _parse_document(request.get("body"))
    if body is not None and body != "":
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        parts += ["--data-raw", shlex.quote(text)]
    return " ".join(parts)


@router.get("/ui/sources/{source_id}/records/{record_id}")
def record_page(request: Request, source_id: str, record_id: str) -> Response:
    principal = session.require_user(request)
    db = get_db(request)
    with db.read() as conn:
        source = readable_source(conn, source_id, principal)
    record = traffic_services.get_record(db, principal, source["id"], record_id)
    trace_logs: list[dict[str, Any]] = []
    if record.get("traceId"):
        trace_logs = traffic_services.core_logs_of_trace(db, source["id"], record["traceId"])
    parts: dict[str, dict[str, Any] | None] = {}
    for side in ("request", "response"):
        payload = record.get(side)
        if payload is None:
            parts[side] = None
            continue
        text, is_tree = _pretty(payload.get("body"))
        parts[side] = {
            **payload,
            "header_items": _header_items(payload.get("headers")),
            "body_text": text,
            "body_is_json": is_tree,
            "query_items": _header_items(payload.get("queryParams")) if side == "request" else [],
        }
    context = {
        "source": source,
        "tab": "explorer",
        "record": record,
        "parts": parts,
        "curl": curl_command(record),
        "trace_logs": trace_logs,
    }
    return render(request, "record.html", context)
