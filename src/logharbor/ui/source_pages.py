"""Home (traffic sources with their last hour), creating a source, and its ingest keys with
copy-paste setup snippets for the Python collector. Reads and writes go through the traffic
feature's services, as the API's routes do, so validation, ownership and the stored rows are
exactly the API's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from logharbor.auth.deps import Principal, get_db
from logharbor.common.errors import BadRequest, Conflict, NotFound
from logharbor.common.handlers import validation_error
from logharbor.common.pagination import PageRequest
from logharbor.common.timestamps import utcnow
from logharbor.stats.schemas import StatsQuery
from logharbor.stats.services import source_stats
from logharbor.traffic import services
from logharbor.traffic.access import Access, require_source
from logharbor.traffic.filters import SortRequest
from logharbor.traffic.schemas import (
    IngestKeyIn,
    ShareIn,
    TrafficSourceIn,
    TrafficSourceOut,
    TrafficSourceUpdate,
)
from logharbor.ui import flash, session
from logharbor.ui.rendering import UIRoute, form_errors, redirect, render, signed_form

router = APIRouter(route_class=UIRoute, include_in_schema=False)

MAX_SOURCES_SHOWN = 100
OVERVIEW_SECONDS = 3600


def _overview(request: Request, principal: Principal, source: TrafficSourceOut) -> dict[str, Any]:
    end = utcnow()
    query = StatsQuery(startDate=end - timedelta(seconds=OVERVIEW_SECONDS), endDate=end)
    totals = source_stats(get_db(request), principal, source.id, query).totals
    return {**source.model_dump(), "totals": totals, "rpm": totals.count / (OVERVIEW_SECONDS / 60)}


def _home(request: Request, form: dict[str, str], errors: dict[str, str], status: int) -> Response:
    principal = session.require_user(request)
    listing = services.list_sources(
        get_db(request),
        principal,
        PageRequest(page=1, page_limit=MAX_SOURCES_SHOWN),
        SortRequest("name", "asc"),
    )
    sources = [_overview(request, principal, source) for source in listing.data]
    context = {"sources": sources, "total": listing.meta.totalItems, "form": form}
    context["errors"] = errors
    return render(request, "home.html", context, status=status)


@router.get("/")
def home(request: Request) -> Response:
    return _home(request, {}, {}, 200)


@router.post("/ui/sources")
async def create_source(request: Request) -> Response:
    principal, form = await signed_form(request)
    values = {"name": form.get("name", ""), "trafficDomain": form.get("trafficDomain", "").strip()}
    try:
        body = TrafficSourceIn(name=values["name"], trafficDomain=values["trafficDomain"])
        created = services.create_source(get_db(request), principal, body)
    except (ValidationError, BadRequest) as exc:
        return _home(request, values, form_errors(exc, "name"), 400)
    return redirect(f"/ui/sources/{created.id}/keys?new=1")


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
    keys = services.list_ingest_keys(db, principal, source["id"]) if owner else []
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
    # A key just created, shown once (Post/Redirect/Get: see ui/flash.py).
    return flash.show_once(
        request, lambda shown: _keys_page(request, source_id, created=shown.get("created"))
    )


@router.post("/ui/sources/{source_id}/keys")
async def create_key(request: Request, source_id: str) -> Response:
    principal, form = await signed_form(request)
    try:
        body = IngestKeyIn(name=form.get("name", ""))
    except ValidationError as exc:
        return _keys_page(
            request, source_id, errors=validation_error(exc.errors()).field_errors, status=400
        )
    created = services.create_ingest_key(get_db(request), principal, source_id, body)
    # A redirect, so that reloading the page does not post the form again (a second key). The
    # key crosses it as a one-time flash, which keeps it nowhere in clear and shows it once.
    return flash.redirect_with(
        request,
        f"/ui/sources/{source_id}/keys",
        {"created": {"name": created.name, "key": created.key}},
    )


@router.post("/ui/sources/{source_id}/keys/{key_id}/revoke")
async def revoke_key(request: Request, source_id: str, key_id: str) -> Response:
    principal, _ = await signed_form(request)
    services.revoke_ingest_key(get_db(request), principal, source_id, key_id)
    return redirect(f"/ui/sources/{source_id}/keys")


# --- settings: rename, retention, LLM content, shares, deletion -----------------------------------


def _settings_page(
    request: Request,
    source_id: str,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    share_form: dict[str, str] | None = None,
    share_errors: dict[str, str] | None = None,
    confirm_delete: bool = False,
    delete_error: str | None = None,
    saved: bool = False,
    status: int = 200,
) -> Response:
    principal = session.require_user(request)
    db = get_db(request)
    with db.read() as conn:
        # Settings are the owner's: a viewer of a shared source gets 403 like the API.
        source = dict(require_source(conn, source_id, principal, Access.MANAGE))
    shares = services.list_shares(db, principal, source["id"])
    retention = source["retention_days"]
    context = {
        "source": source,
        "tab": "settings",
        # What was typed wins over what is stored, field by field.
        "form": {
            "name": source["name"],
            "trafficDomain": source["traffic_domain"],
            "retentionDays": "" if retention is None else str(retention),
            "captureLlmContent": "on" if source["capture_llm_content"] else "",
            **(form or {}),
        },
        "errors": errors or {},
        "shares": shares,
        "share_form": share_form or {},
        "share_errors": share_errors or {},
        "confirm_delete": confirm_delete,
        "delete_error": delete_error,
        "saved": saved,
    }
    return render(request, "settings.html", context, status=status)


@router.get("/ui/sources/{source_id}/settings")
def settings_page(request: Request, source_id: str) -> Response:
    return _settings_page(request, source_id, saved=request.query_params.get("saved") == "1")


def _retention(text: str) -> int | None:
    """Blank keeps every record; otherwise whole days (the API's bounds apply after)."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise BadRequest(field_errors={"retentionDays": "Enter a whole number of days"}) from None


@router.post("/ui/sources/{source_id}/settings")
async def update_settings(request: Request, source_id: str) -> Response:
    principal, form = await signed_form(request)
    # A form from before the domain field existed (a tab left open) keeps the stored domain; a
    # blank one is refused by the API's rules like any other bad domain.
    values = {"name": form.get("name", ""), "retentionDays": form.get("retentionDays", "").strip()}
    if "trafficDomain" in form:
        values["trafficDomain"] = form["trafficDomain"].strip()
    # An unchecked box sends nothing, so only a form that showed it (llmContentShown) turns
    # content capture off; an older form left open keeps the setting.
    capture: bool | None = None
    if "llmContentShown" in form:
        capture = form.get("captureLlmContent") == "on"
        values["captureLlmContent"] = "on" if capture else ""
    try:
        # The API's update checks and normalizes the domain (an http(s) origin).
        body = TrafficSourceUpdate(
            name=values["name"],
            trafficDomain=values.get("trafficDomain"),
            retentionDays=_retention(values["retentionDays"]),
            captureLlmContent=capture,
        )
        services.update_source(get_db(request), principal, source_id, body)
    except (ValidationError, BadRequest) as exc:
        errors = form_errors(exc, "name")
        return _settings_page(request, source_id, form=values, errors=errors, status=400)
    return redirect(f"/ui/sources/{source_id}/settings?saved=1")


@router.post("/ui/sources/{source_id}/shares")
async def create_share(request: Request, source_id: str) -> Response:
    principal, form = await signed_form(request)
    values = {"email": form.get("email", "").strip()}
    try:
        services.create_share(get_db(request), principal, source_id, ShareIn(**values))
    except (ValidationError, BadRequest, NotFound, Conflict) as exc:
        status = 400 if isinstance(exc, ValidationError) else exc.status_code
        errors = form_errors(exc, "email")
        return _settings_page(
            request, source_id, share_form=values, share_errors=errors, status=status
        )
    return redirect(f"/ui/sources/{source_id}/settings")


@router.post("/ui/sources/{source_id}/shares/{user_id}/revoke")
async def revoke_share(request: Request, source_id: str, user_id: str) -> Response:
    principal, _ = await signed_form(request)
    services.delete_share(get_db(request), principal, source_id, user_id)
    return redirect(f"/ui/sources/{source_id}/settings")


@router.post("/ui/sources/{source_id}/leave")
async def leave_share(request: Request, source_id: str) -> Response:
    """A viewer gives up a source shared with them: only ever the caller's own share."""
    principal, _ = await signed_form(request)
    db = get_db(request)
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
    if source["user_id"] == principal.user_id:
        raise BadRequest("You own this source: delete it in its settings instead of leaving it.")
    # The user id is the session's, never the form's, so nobody can remove someone else's share.
    services.delete_share(db, principal, source["id"], principal.user_id)
    return redirect("/")


@router.get("/ui/sources/{source_id}/delete")
def delete_confirm_page(request: Request, source_id: str) -> Response:
    return _settings_page(request, source_id, confirm_delete=True)


@router.post("/ui/sources/{source_id}/delete")
async def delete_source(request: Request, source_id: str) -> Response:
    principal, form = await signed_form(request)
    with get_db(request).read() as conn:
        source = require_source(conn, source_id, principal, Access.MANAGE)
    # Deleting drops every record, so the name must be typed back, not just a click.
    if form.get("confirm", "").strip() != source["name"]:
        return _settings_page(
            request,
            source_id,
            confirm_delete=True,
            delete_error="Type the source's name exactly to delete it.",
            status=400,
        )
    services.delete_source(get_db(request), principal, source_id)
    return redirect("/")
