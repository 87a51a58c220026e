"""Exceptions (grouped FATAL traffic) and webhooks of a traffic source, through the alerts
feature's own route functions (same tenancy, validation and URL guard as the API).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from logharbor.alerts import routes as alert_routes
from logharbor.alerts.schemas import WebhookCreate
from logharbor.auth.deps import get_db, get_settings
from logharbor.common.errors import BadRequest
from logharbor.common.pagination import PageRequest
from logharbor.traffic.access import Access, require_source
from logharbor.traffic.ingest import validation_field_errors
from logharbor.ui import session
from logharbor.ui.rendering import UIRoute, read_form, render

router = APIRouter(route_class=UIRoute, include_in_schema=False)

PAGE_SIZE = 50


def _source(request: Request, source_id: str) -> dict[str, Any]:
    principal = session.require_user(request)
    with get_db(request).read() as conn:
        return dict(require_source(conn, source_id, principal, Access.READ))


@router.get("/ui/sources/{source_id}/exceptions")
def exceptions_page(request: Request, source_id: str, status: str = "open") -> Response:
    principal = session.require_user(request)
    source = _source(request, source_id)
    if status not in ("open", "resolved", "all"):
        raise BadRequest(field_errors={"status": "status must be open, resolved or all"})
    listing = alert_routes.list_exceptions(
        source["id"],
        principal,
        get_db(request),
        PageRequest(page=1, page_limit=PAGE_SIZE),
        status=None if status == "all" else status,  # type: ignore[arg-type]
        sort="lastSeenAt",
        sortDirection="desc",
    )
    context = {
        "source": source,
        "tab": "exceptions",
        "exceptions": listing["data"],
        "total": listing["meta"]["totalItems"],
        "status": status,
    }
    return render(request, "exceptions.html", context)


def _webhooks_page(
    request: Request,
    source_id: str,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    created: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    principal = session.require_user(request)
    source = _source(request, source_id)
    owner = source["user_id"] == principal.user_id
    hooks = alert_routes.list_webhooks(source["id"], principal, get_db(request)) if owner else []
    context = {
        "source": source,
        "tab": "webhooks",
        "owner": owner,
        "webhooks": hooks,
        "form": form or {"level": "FATAL"},
        "errors": errors or {},
        "created": created,
    }
    return render(request, "webhooks.html", context, status=status)


@router.get("/ui/sources/{source_id}/webhooks")
def webhooks_page(request: Request, source_id: str) -> Response:
    return _webhooks_page(request, source_id)


@router.post("/ui/sources/{source_id}/webhooks")
async def create_webhook(request: Request, source_id: str) -> Response:
    principal = session.require_user(request)
    form = await read_form(request)
    session.check_form_origin(request, form, signed_in=True)
    values = {k: form.get(k, "").strip() for k in ("value", "level", "type")}
    try:
        body = WebhookCreate(
            value=values["value"], level=values["level"], type=values["type"] or None
        )
        created = alert_routes.create_webhook(
            source_id, body, principal, get_db(request), get_settings(request)
        )
    except ValidationError as exc:
        errors = validation_field_errors(exc)
        return _webhooks_page(request, source_id, form=values, errors=errors, status=400)
    except BadRequest as exc:
        errors = exc.field_errors or {"value": exc.message}
        return _webhooks_page(request, source_id, form=values, errors=errors, status=400)
    return _webhooks_page(request, source_id, created=created, status=201)
