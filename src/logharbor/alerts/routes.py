"""Webhooks (``/webhooks/...``, alias ``/webhook/...``) and exceptions (``/exceptions/...``,
alias ``/exception/...``) of a traffic source. Each handler is registered under both paths."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Response
from sqlalchemy import RowMapping

from logharbor.alerts import dispatcher, queries, urls
from logharbor.alerts.schemas import (
    DeliveryPage,
    ExceptionOut,
    ExceptionPage,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookTestOut,
    WebhookUpdate,
    WebhookUpdated,
    delivery_out,
    exception_out,
    webhook_out,
)
from logharbor.auth.deps import AppSettings, CurrentPrincipal, CurrentUser, Db, Principal
from logharbor.common.errors import BadRequest, NotFound
from logharbor.common.ids import is_uuid, new_id
from logharbor.common.pagination import Page, parse_sort
from logharbor.common.routing import ArkynRoute, also_at, path_id
from logharbor.common.timestamps import utcnow
from logharbor.settings import Settings
from logharbor.traffic.access import Access, require_source

router = APIRouter(route_class=ArkynRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {400: {}, 401: {}, 403: {}, 404: {}}


def _id(value: str, field: str, what: str) -> str:
    if not is_uuid(value):
        raise BadRequest(field_errors={field: f"Invalid {what} id format"})
    return value.lower()


def guess_type(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    if host in ("discord.com", "discordapp.com") or host.endswith(
        (".discord.com", ".discordapp.com")
    ):
        return "discord"
    if host == "hooks.slack.com":
        return "slack"
    return "webhook"


def _checked_url(value: str, settings: Settings) -> str:
    try:
        return urls.validate_url(value, dispatcher.policy_of(settings))
    except urls.UrlRefused as exc:
        raise BadRequest("Invalid webhook URL", field_errors={"value": str(exc)}) from None


def _load_webhook(db: Db, webhook_id: str, principal: Principal) -> RowMapping:
    webhook_id = _id(webhook_id, "webhookId", "webhook")
    with db.read() as conn:
        webhook = queries.get_webhook(conn, webhook_id)
        if webhook is None:
            raise NotFound("Webhook not found")
        require_source(conn, webhook["traffic_source_id"], principal, Access.MANAGE)
    return webhook


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# --- webhooks -----------------------------------------------------------------------------------


@also_at(router, "/webhook/{id}")
@router.post(
    "/webhooks/{id}",
    status_code=201,
    response_model=WebhookCreated,
    responses=_ERRORS,
    tags=["webhooks"],
)
def create_webhook(
    trafficSourceId: Annotated[str, path_id("The traffic source's id")],
    body: WebhookCreate,
    principal: CurrentUser,
    db: Db,
    settings: AppSettings,
) -> dict[str, Any]:
    """Add a webhook; the answer holds its signing secret, which is never shown again."""
    with db.read() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.MANAGE)
    url = _checked_url(body.value, settings)
    now = utcnow()
    secret = _new_secret()
    row = {
        "id": new_id(),
        "traffic_source_id": source["id"],
        "type": body.type or guess_type(url),
        "value": url,
        "level": body.level,
        "pathname_prefix": body.pathnamePrefix,
        "status_min": body.statusMin,
        "status_max": body.statusMax,
        "cooldown_seconds": (
            settings.webhook_default_cooldown_seconds
            if body.cooldownSeconds is None
            else body.cooldownSeconds
        ),
        "secret": secret,
        "created_at": now,
        "updated_at": now,
    }
    with db.write() as conn:
        webhook = queries.insert_webhook(conn, row)
    return {**webhook_out(webhook), "secret": secret}


@also_at(router, "/webhook/{id}")
@router.get(
    "/webhooks/{id}",
    response_model=list[WebhookOut],
    responses=_ERRORS,
    tags=["webhooks"],
)
def list_webhooks(
    trafficSourceId: Annotated[str, path_id("The traffic source's id")],
    principal: CurrentUser,
    db: Db,
) -> list[dict[str, Any]]:
    """The source's webhooks (a plain array, as the original), with their last delivery."""
    with db.read() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.MANAGE)
        rows = queries.list_webhooks(conn, source["id"])
    return [webhook_out(row) for row in rows]


@also_at(router, "/webhook/{id}")
@router.put(
    "/webhooks/{id}",
    response_model=WebhookUpdated,
    response_model_exclude_unset=True,
    responses=_ERRORS,
    tags=["webhooks"],
)
def update_webhook(
    webhookId: Annotated[str, path_id("The webhook's id")],
    body: WebhookUpdate,
    principal: CurrentUser,
    db: Db,
    settings: AppSettings,
) -> dict[str, Any]:
    """Change a webhook; fields left out keep their value, ``null`` clears a filter.

    With ``rotateSecret: true`` the answer carries a new ``secret`` (shown only then).
    """
    webhook = _load_webhook(db, webhookId, principal)
    given = body.model_fields_set
    changes: dict[str, Any] = {}
    if body.value is not None:
        changes["value"] = _checked_url(body.value, settings)
    if body.level is not None:
        changes["level"] = body.level
    if body.type is not None:
        changes["type"] = body.type
    for field, column in (
        ("pathnamePrefix", "pathname_prefix"),
        ("statusMin", "status_min"),
        ("statusMax", "status_max"),
    ):
        if field in given:
            changes[column] = getattr(body, field)
    if body.cooldownSeconds is not None:
        changes["cooldown_seconds"] = body.cooldownSeconds
    low = changes.get("status_min", webhook["status_min"])
    high = changes.get("status_max", webhook["status_max"])
    if low is not None and high is not None and low > high:
        raise BadRequest(field_errors={"statusMin": "statusMin must not be greater than statusMax"})
    secret = _new_secret() if body.rotateSecret else None
    if secret is not None:
        changes["secret"] = secret
    changes["updated_at"] = utcnow()
    with db.write() as conn:
        updated = queries.update_webhook(conn, webhook["id"], changes)
    out = webhook_out(updated)
    if secret is not None:
        out["secret"] = secret
    return out


@also_at(router, "/webhook/{id}")
@router.delete("/webhooks/{id}", status_code=204, responses=_ERRORS, tags=["webhooks"])
def delete_webhook(
    webhookId: Annotated[str, path_id("The webhook's id")], principal: CurrentUser, db: Db
) -> Response:
    """Delete a webhook and its pending notifications."""
    webhook = _load_webhook(db, webhookId, principal)
    with db.write() as conn:
        queries.delete_webhook(conn, webhook["id"])
    return Response(status_code=204)


@also_at(router, "/webhook/{webhookId}/test")
@router.post(
    "/webhooks/{webhookId}/test",
    response_model=WebhookTestOut,
    responses=_ERRORS,
    tags=["webhooks"],
)
def test_webhook(
    webhookId: str, principal: CurrentUser, db: Db, settings: AppSettings
) -> dict[str, Any]:
    """Send a test message now and say how it went (also kept as the last delivery)."""
    webhook = _load_webhook(db, webhookId, principal)
    with db.read() as conn:
        name = queries.source_names(conn, [webhook["traffic_source_id"]]).get(
            webhook["traffic_source_id"], ""
        )
    outcome = dispatcher.send_test(db, settings, webhook, name)
    with db.read() as conn:
        refreshed = queries.get_webhook(conn, webhook["id"])
    if refreshed is None:
        raise NotFound("Webhook not found")
    return {
        "delivered": outcome.ok,
        "statusCode": outcome.status_code,
        "error": outcome.error,
        "webhook": webhook_out(refreshed),
    }


@also_at(router, "/webhook/{webhookId}/deliveries")
@router.get(
    "/webhooks/{webhookId}/deliveries",
    response_model=DeliveryPage,
    responses=_ERRORS,
    tags=["webhooks"],
)
def list_deliveries(webhookId: str, principal: CurrentUser, db: Db, page: Page) -> dict[str, Any]:
    """The webhook's queued and past notifications, newest first (kept 7 days once done)."""
    webhook = _load_webhook(db, webhookId, principal)
    with db.read() as conn:
        rows, total = queries.list_deliveries(
            conn, webhook["id"], offset=page.offset, limit=page.page_limit
        )
    return page.envelope([delivery_out(row) for row in rows], total)


# --- exceptions ---------------------------------------------------------------------------------


@also_at(router, "/exception/{trafficSourceId}")
@router.get(
    "/exceptions/{trafficSourceId}",
    response_model=ExceptionPage,
    responses=_ERRORS,
    tags=["exceptions"],
)
def list_exceptions(
    trafficSourceId: str,
    principal: CurrentPrincipal,
    db: Db,
    page: Page,
    status: Annotated[Literal["open", "resolved"] | None, Query()] = None,
    sort: Annotated[str | None, Query(description="lastSeenAt, firstSeenAt, count")] = None,
    sortDirection: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """FATAL records grouped by fingerprint, most recently seen first."""
    order, descending = parse_sort(sort, sortDirection, queries.EXCEPTION_SORTS, "lastSeenAt")
    with db.read() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.READ)
        rows, total = queries.list_exceptions(
            conn,
            source["id"],
            status=status,
            order=order,
            descending=descending,
            offset=page.offset,
            limit=page.page_limit,
        )
    return page.envelope([exception_out(row) for row in rows], total)


def _load_exception(
    db: Db, source_id: str, exception_id: str, principal: Principal, access: Access
) -> RowMapping:
    exception_id = _id(exception_id, "exceptionId", "exception")
    with db.read() as conn:
        source = require_source(conn, source_id, principal, access)
        row = queries.get_exception(conn, source["id"], exception_id)
    if row is None:
        raise NotFound("Exception not found")
    return row


@also_at(router, "/exception/{trafficSourceId}/{exceptionId}")
@router.get(
    "/exceptions/{trafficSourceId}/{exceptionId}",
    response_model=ExceptionOut,
    responses=_ERRORS,
    tags=["exceptions"],
)
def get_exception(
    trafficSourceId: str, exceptionId: str, principal: CurrentPrincipal, db: Db
) -> dict[str, Any]:
    """One exception with its counts and a sample record."""
    return exception_out(_load_exception(db, trafficSourceId, exceptionId, principal, Access.READ))


def _set_status(
    db: Db, source_id: str, exception_id: str, principal: Principal, status: str
) -> dict[str, Any]:
    row = _load_exception(db, source_id, exception_id, principal, Access.MANAGE)
    with db.write() as conn:
        queries.set_exception_status(conn, row["id"], status, utcnow())
        updated = queries.get_exception(conn, row["traffic_source_id"], row["id"])
    assert updated is not None
    return exception_out(updated)


@also_at(router, "/exception/{trafficSourceId}/{exceptionId}/resolve")
@router.post(
    "/exceptions/{trafficSourceId}/{exceptionId}/resolve",
    response_model=ExceptionOut,
    responses=_ERRORS,
    tags=["exceptions"],
)
def resolve_exception(
    trafficSourceId: str, exceptionId: str, principal: CurrentUser, db: Db
) -> dict[str, Any]:
    """Mark resolved; the next occurrence reopens it and notifies again."""
    return _set_status(db, trafficSourceId, exceptionId, principal, "resolved")


@also_at(router, "/exception/{trafficSourceId}/{exceptionId}/reopen")
@router.post(
    "/exceptions/{trafficSourceId}/{exceptionId}/reopen",
    response_model=ExceptionOut,
    responses=_ERRORS,
    tags=["exceptions"],
)
def reopen_exception(
    trafficSourceId: str, exceptionId: str, principal: CurrentUser, db: Db
) -> dict[str, Any]:
    """Mark open again by hand."""
    return _set_status(db, trafficSourceId, exceptionId, principal, "open")
