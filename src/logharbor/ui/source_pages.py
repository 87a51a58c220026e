"""Home (traffic sources with their last hour), creating a source, and its ingest keys with
copy-paste setup snippets for the Python collector. Writes go through the traffic API's own
route functions, so validation, ownership and the stored rows are exactly the API's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from logharbor.auth.deps import get_db
from logharbor.common.errors import BadRequest
from logharbor.common.pagination import PageRequest
from logharbor.traffic import source_routes
from logharbor.traffic.access import Access, require_source
from logharbor.traffic.filters import SortRequest
from logharbor.traffic.ingest import validation_field_errors
from logharbor.traffic.schemas import IngestKeyIn, TrafficSourceIn
from logharbor.ui import charts, session
from logharbor.ui.rendering import UIRoute, read_form, redirect, render

router = APIRouter(route_class=UIRoute, include_in_schema=False)

MAX_SOURCES_SHOWN = 100
OVERVIEW_SECONDS = 3600


def _overview(request: Request, source: dict[str, Any]) -> dict[str, Any]:
    totals = charts.stats(request, source["id"], OVERVIEW_SECONDS, interval=None, group_by=None)[
        "totals"
    ]
    return {**source, "totals": totals, "rpm": totals["count"] / (OVERVIEW_SECONDS / 60)}


def _home(request: Request, form: dict[str, str], errors: dict[str, str], status: int) -> Response:
    principal = session.require_user(request)
    listing = source_routes.list_sources(
        principal,
        get_db(request),
        PageRequest(page=1, page_limit=MAX_SOURCES_SHOWN),
        SortRequest("name", "asc"),
        None,
    )
    sources = [_overview(request, source) for source in listing["data"]]
    context = {"sources": sources, "total": listing["meta"]["totalItems"], "form": form}
    context["errors"] = errors
    return render(request, "home.html", context, status=status)


@router.get("/")
def home(request: Request) -> Response:
    return _home(request, {}, {}, 200)


@router.post("/ui/sources")
async def create_source(request: Request) -> Response:
    principal = session.require_user(request)
    form = await read_form(request)
    session.check_form_origin(request, form, signed_in=True)
    values = {"name": form.get("name", ""), "trafficDomain": form.get("trafficDomain", "").strip()}
    try:
        body = TrafficSourceIn(**values)
        created = source_routes.create_source(body, principal, get_db(request))
    except ValidationError as exc:
        return _home(request, values, validation_field_errors(exc), 400)
    except BadRequest as exc:
        return _home(request, values, exc.field_errors or {"name": exc.message}, 400)
    return redirect(f"/ui/sources/{created['id']}/keys?new=1")


def _keys_page(
    request: Request,
    source_id: str,
    *,
    created: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    principal = session.require_user(request)
    db = get_db(request)
    with db.read() as conn:
        source = dict(require_source(conn, source_id, principal, Access.READ))
    owner = source["user_id"] == principal.user_id
    keys = source_routes.list_ingest_keys(source["id"], principal, db) if owner else []
    base_url = str(request.base_url).rstrip("/")
    context = {
        "source": source,
        "tab": "keys",
        "keys": keys,
        "owner": owner,
        "created": created,
        "errors": errors or {},
        "base_url": base_url,
        "new_source": request.query_params.get("new") == "1",
    }
    return render(request, "keys.html", context, status=status)


@router.get("/ui/sources/{source_id}/keys")
def keys_page(request: Request, source_id: str) -> Response:
    return _keys_page(request, source_id)


@router.post("/ui/sources/{source_id}/keys")
async def create_key(request: Request, source_id: str) -> Response:
    principal = session.require_user(request)
    form = await read_form(request)
    session.check_form_origin(request, form, signed_in=True)
    try:
        body = IngestKeyIn(name=form.get("name", ""))
    except ValidationError as exc:
        return _keys_page(request, source_id, errors=validation_field_errors(exc), status=400)
    created = source_routes.create_ingest_key(source_id, body, principal, get_db(request))
    # The secret is shown once, in this response; it is never stored in clear or redisplayed.
    return _keys_page(request, source_id, created=created, status=201)


@router.post("/ui/sources/{source_id}/keys/{key_id}/revoke")
async def revoke_key(request: Request, source_id: str, key_id: str) -> Response:
    principal = session.require_user(request)
    form = await read_form(request)
    session.check_form_origin(request, form, signed_in=True)
    source_routes.revoke_ingest_key(source_id, key_id, principal, get_db(request))
    return redirect(f"/ui/sources/{source_id}/keys")
