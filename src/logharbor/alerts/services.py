"""What the alerts API and the web UI both do with a traffic source's webhooks and exceptions:
the routes (routes.py) and the pages (ui/alert_pages.py) call these with typed arguments, so
tenancy, validation and the URL guard are one. Answers are in the API's JSON shapes."""

from __future__ import annotations

import secrets
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import RowMapping

from logharbor.alerts import dispatcher, queries, urls
from logharbor.alerts.schemas import (
    WebhookCreate,
    WebhookUpdate,
    delivery_out,
    exception_out,
    webhook_out,
)
from logharbor.auth.deps import Principal
from logharbor.common.errors import BadRequest, NotFound
from logharbor.common.ids import is_uuid, new_id
from logharbor.common.pagination import PageRequest, parse_sort
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database
from logharbor.settings import Settings
from logharbor.traffic.access import Access, require_source


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


def _load_webhook(db: Database, webhook_id: str, principal: Principal) -> RowMapping:
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


def create_webhook(
    db: Database, settings: Settings, principal: Principal, source_id: str, body: WebhookCreate
) -> dict[str, Any]:
    """A new webhook, with its signing secret (which is never shown again)."""
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.MANAGE)
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


def list_webhooks(db: Database, principal: Principal, source_id: str) -> list[dict[str, Any]]:
    """The source's webhooks, with their last delivery."""
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.MANAGE)
        rows = queries.list_webhooks(conn, source["id"])
    return [webhook_out(row) for row in rows]


def update_webhook(
    db: Database, settings: Settings, principal: Principal, webhook_id: str, body: WebhookUpdate
) -> dict[str, Any]:
    """Change a webhook; fields left out keep their value, ``None`` clears a filter. With
    ``rotateSecret`` the answer carries the new ``secret`` (shown only then)."""
    webhook = _load_webhook(db, webhook_id, principal)
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


def delete_webhook(db: Database, principal: Principal, webhook_id: str) -> None:
    """Delete a webhook and its pending notifications."""
    webhook = _load_webhook(db, webhook_id, principal)
    with db.write() as conn:
        queries.delete_webhook(conn, webhook["id"])


def test_webhook(
    db: Database, settings: Settings, principal: Principal, webhook_id: str
) -> dict[str, Any]:
    """Send a test message now and say how it went (also kept as the last delivery)."""
    webhook = _load_webhook(db, webhook_id, principal)
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


def list_deliveries(
    db: Database, principal: Principal, webhook_id: str, page: PageRequest
) -> dict[str, Any]:
    """The webhook's queued and past notifications, newest first."""
    webhook = _load_webhook(db, webhook_id, principal)
    with db.read() as conn:
        rows, total = queries.list_deliveries(
            conn, webhook["id"], offset=page.offset, limit=page.page_limit
        )
    return page.envelope([delivery_out(row) for row in rows], total)


# --- exceptions ---------------------------------------------------------------------------------


def list_exceptions(
    db: Database,
    principal: Principal,
    source_id: str,
    page: PageRequest,
    *,
    status: Literal["open", "resolved"] | None = None,
    sort: str | None = None,
    sort_direction: str | None = None,
) -> dict[str, Any]:
    """FATAL records grouped by fingerprint, most recently seen first by default."""
    order, descending = parse_sort(sort, sort_direction, queries.EXCEPTION_SORTS, "lastSeenAt")
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
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
    db: Database, source_id: str, exception_id: str, principal: Principal, access: Access
) -> RowMapping:
    exception_id = _id(exception_id, "exceptionId", "exception")
    with db.read() as conn:
        source = require_source(conn, source_id, principal, access)
        row = queries.get_exception(conn, source["id"], exception_id)
    if row is None:
        raise NotFound("Exception not found")
    return row


def get_exception(
    db: Database, principal: Principal, source_id: str, exception_id: str
) -> dict[str, Any]:
    """One exception with its counts and a sample record."""
    return exception_out(_load_exception(db, source_id, exception_id, principal, Access.READ))


def set_exception_status(
    db: Database,
    principal: Principal,
    source_id: str,
    exception_id: str,
    status: Literal["open", "resolved"],
) -> dict[str, Any]:
    """Resolve an exception (its next occurrence reopens it) or reopen it by hand."""
    row = _load_exception(db, source_id, exception_id, principal, Access.MANAGE)
    with db.write() as conn:
        queries.set_exception_status(conn, row["id"], status, utcnow())
        updated = queries.get_exception(conn, row["traffic_source_id"], row["id"])
    assert updated is not None
    return exception_out(updated)
