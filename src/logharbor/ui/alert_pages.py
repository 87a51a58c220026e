"""Exceptions (grouped FATAL traffic) and webhooks of a traffic source, through the alerts
feature's services, as the API's routes do (same tenancy, validation and URL guard).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from logharbor.alerts import services as alert_services
from logharbor.alerts.schemas import WebhookCreate, WebhookUpdate
from logharbor.auth.deps import Principal, get_db, get_settings
from logharbor.common.errors import BadRequest, NotFound
from logharbor.common.pagination import PageRequest
from logharbor.traffic.access import Access, require_source
from logharbor.ui import flash, session
from logharbor.ui.rendering import UIRoute, form_errors, redirect, render, signed_form

router = APIRouter(route_class=UIRoute, include_in_schema=False)

PAGE_SIZE = 50
STATUSES = ("open", "resolved", "all")


def _source(request: Request, source_id: str) -> dict[str, Any]:
    principal = session.require_user(request)
    with get_db(request).read() as conn:
        return dict(require_source(conn, source_id, principal, Access.READ))


@router.get("/ui/sources/{source_id}/exceptions")
def exceptions_page(request: Request, source_id: str, status: str = "open") -> Response:
    principal = session.require_user(request)
    source = _source(request, source_id)
    if status not in STATUSES:
        raise BadRequest(field_errors={"status": "status must be open, resolved or all"})
    listing = alert_services.list_exceptions(
        get_db(request),
        principal,
        source["id"],
        PageRequest(page=1, page_limit=PAGE_SIZE),
        status=None if status == "all" else status,  # type: ignore[arg-type]
        sort="lastSeenAt",
        sort_direction="desc",
    )
    context = {
        "source": source,
        "tab": "exceptions",
        # Viewers of a shared source read the list; only the owner gets the buttons.
        "owner": source["user_id"] == principal.user_id,
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
    edit: dict[str, Any] | None = None,
    test_result: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    principal = session.require_user(request)
    source = _source(request, source_id)
    owner = source["user_id"] == principal.user_id
    hooks = alert_services.list_webhooks(get_db(request), principal, source["id"]) if owner else []
    context = {
        "source": source,
        "tab": "webhooks",
        "owner": owner,
        "webhooks": hooks,
        "form": form or {"level": "FATAL"},
        "errors": errors or {},
        "created": created,
        # The webhook whose edit form failed: {"id", "form", "errors"} to show it open again.
        "edit": edit,
        "test_result": test_result,
    }
    return render(request, "webhooks.html", context, status=status)


def _webhooks_path(source_id: str) -> str:
    return f"/ui/sources/{source_id}/webhooks"


@router.get("/ui/sources/{source_id}/webhooks")
def webhooks_page(request: Request, source_id: str) -> Response:
    # What the last create, rotate or test produced, once (Post/Redirect/Get: see ui/flash.py).
    return flash.show_once(
        request,
        lambda shown: _webhooks_page(
            request, source_id, created=shown.get("created"), test_result=shown.get("test_result")
        ),
    )


@router.post("/ui/sources/{source_id}/webhooks")
async def create_webhook(request: Request, source_id: str) -> Response:
    principal, form = await signed_form(request)
    values = {k: form.get(k, "").strip() for k in ("value", "level", "type")}
    try:
        body = WebhookCreate(
            value=values["value"], level=values["level"], type=values["type"] or None
        )
        created = alert_services.create_webhook(
            get_db(request), get_settings(request), principal, source_id, body
        )
    except (ValidationError, BadRequest) as exc:
        errors = form_errors(exc, "value")
        return _webhooks_page(request, source_id, form=values, errors=errors, status=400)
    # A redirect, so that reloading the page does not post the form again (a second webhook);
    # the secret crosses it as a one-time flash.
    return flash.redirect_with(
        request, _webhooks_path(source_id), {"created": {"secret": created["secret"]}}
    )


@router.post("/ui/sources/{source_id}/exceptions/{exception_id}/{action}")
async def set_exception_status(
    request: Request, source_id: str, exception_id: str, action: str
) -> Response:
    principal, form = await signed_form(request)
    statuses: dict[str, Literal["open", "resolved"]] = {"resolve": "resolved", "reopen": "open"}
    if action not in statuses:
        raise NotFound("No such action")
    # The API's service: MANAGE access, so a read-only viewer gets 403 here too.
    alert_services.set_exception_status(
        get_db(request), principal, source_id, exception_id, statuses[action]
    )
    back = form.get("status", "open")
    return redirect(
        f"/ui/sources/{source_id}/exceptions?status={back if back in STATUSES else 'open'}"
    )


async def _webhook_form(
    request: Request, source_id: str, webhook_id: str
) -> tuple[Principal, dict[str, str]]:
    """``signed_form`` for one webhook's forms, which must name a webhook of the source in the
    address, not merely one of the same owner."""
    principal, form = await signed_form(request)
    hooks = alert_services.list_webhooks(get_db(request), principal, source_id)
    if webhook_id.lower() not in {hook["id"] for hook in hooks}:
        raise NotFound("Webhook not found")
    return principal, form


_EDIT_FIELDS = ("value", "level", "pathnamePrefix", "statusMin", "statusMax", "cooldownSeconds")


def _update_body(form: dict[str, str]) -> WebhookUpdate:
    """Form text to the API's update: a blank filter clears it, a blank cooldown keeps it."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in ("statusMin", "statusMax", "cooldownSeconds"):
        text = form.get(field, "").strip()
        if not text:
            values[field] = None
            continue
        try:
            values[field] = int(text)
        except ValueError:
            errors[field] = f"{field} must be a whole number"
    if errors:
        raise BadRequest("Invalid webhook", field_errors=errors)
    values["value"] = form.get("value", "").strip()
    values["level"] = form.get("level", "").strip()
    values["pathnamePrefix"] = form.get("pathnamePrefix", "").strip() or None
    if values["cooldownSeconds"] is None:
        # Left out of the set fields, the stored cooldown stays.
        del values["cooldownSeconds"]
    return WebhookUpdate(**values)


@router.post("/ui/sources/{source_id}/webhooks/{webhook_id}")
async def update_webhook(request: Request, source_id: str, webhook_id: str) -> Response:
    principal, form = await _webhook_form(request, source_id, webhook_id)
    values = {k: form.get(k, "").strip() for k in _EDIT_FIELDS}
    try:
        body = _update_body(form)
        alert_services.update_webhook(
            get_db(request), get_settings(request), principal, webhook_id, body
        )
    except (ValidationError, BadRequest) as exc:
        edit = {"id": webhook_id, "form": values, "errors": form_errors(exc, "value")}
        return _webhooks_page(request, source_id, edit=edit, status=400)
    return redirect(_webhooks_path(source_id))


@router.post("/ui/sources/{source_id}/webhooks/{webhook_id}/delete")
async def delete_webhook(request: Request, source_id: str, webhook_id: str) -> Response:
    principal, _ = await _webhook_form(request, source_id, webhook_id)
    alert_services.delete_webhook(get_db(request), principal, webhook_id)
    return redirect(_webhooks_path(source_id))


@router.post("/ui/sources/{source_id}/webhooks/{webhook_id}/rotate")
async def rotate_webhook_secret(request: Request, source_id: str, webhook_id: str) -> Response:
    principal, _ = await _webhook_form(request, source_id, webhook_id)
    updated = alert_services.update_webhook(
        get_db(request),
        get_settings(request),
        principal,
        webhook_id,
        WebhookUpdate(rotateSecret=True),
    )
    # Like creation: the new secret is shown once, after a redirect (a reload rotates nothing).
    return flash.redirect_with(
        request,
        _webhooks_path(source_id),
        {"created": {"secret": updated["secret"], "rotated": True}},
    )


@router.post("/ui/sources/{source_id}/webhooks/{webhook_id}/test")
async def test_webhook(request: Request, source_id: str, webhook_id: str) -> Response:
    principal, _ = await _webhook_form(request, source_id, webhook_id)
    # A real HTTP request (up to the webhook timeout): off the event loop.
    outcome = await run_in_threadpool(
        alert_services.test_webhook, get_db(request), get_settings(request), principal, webhook_id
    )
    # Redirected like the other writes: a reload must not send another test message.
    result = {
        "delivered": outcome["delivered"],
        "statusCode": outcome["statusCode"],
        "error": outcome["error"],
        "webhook": {"value": outcome["webhook"]["value"]},
    }
    return flash.redirect_with(request, _webhooks_path(source_id), {"test_result": result})
