"""Webhooks (``/webhooks/...``, alias ``/webhook/...``) and exceptions (``/exceptions/...``,
alias ``/exception/...``) of a traffic source. Each handler is registered under both paths; the
work is in services.py, which the web UI calls too."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from logharbor.alerts import services
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
)
from logharbor.auth.deps import AppSettings, CurrentPrincipal, CurrentUser, Db
from logharbor.common.pagination import Page
from logharbor.common.routing import ArkynRoute, also_at, path_id

router = APIRouter(route_class=ArkynRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {400: {}, 401: {}, 403: {}, 404: {}}


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
    return services.create_webhook(db, settings, principal, trafficSourceId, body)


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
    return services.list_webhooks(db, principal, trafficSourceId)


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
    return services.update_webhook(db, settings, principal, webhookId, body)


@also_at(router, "/webhook/{id}")
@router.delete("/webhooks/{id}", status_code=204, responses=_ERRORS, tags=["webhooks"])
def delete_webhook(
    webhookId: Annotated[str, path_id("The webhook's id")], principal: CurrentUser, db: Db
) -> Response:
    """Delete a webhook and its pending notifications."""
    services.delete_webhook(db, principal, webhookId)
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
    return services.test_webhook(db, settings, principal, webhookId)


@also_at(router, "/webhook/{webhookId}/deliveries")
@router.get(
    "/webhooks/{webhookId}/deliveries",
    response_model=DeliveryPage,
    responses=_ERRORS,
    tags=["webhooks"],
)
def list_deliveries(webhookId: str, principal: CurrentUser, db: Db, page: Page) -> dict[str, Any]:
    """The webhook's queued and past notifications, newest first (kept 7 days once done)."""
    return services.list_deliveries(db, principal, webhookId, page)


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
    return services.list_exceptions(
        db, principal, trafficSourceId, page, status=status, sort=sort, sort_direction=sortDirection
    )


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
    return services.get_exception(db, principal, trafficSourceId, exceptionId)


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
    return services.set_exception_status(db, principal, trafficSourceId, exceptionId, "resolved")


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
    return services.set_exception_status(db, principal, trafficSourceId, exceptionId, "open")
