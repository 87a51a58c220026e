"""Wire shapes of webhooks and exceptions (Arkyn family: camelCase, upper-case levels)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import RowMapping

from logharbor.common.timestamps import Timestamp

LEVELS = ("INFO", "WARNING", "FATAL")
TYPES = ("discord", "slack", "webhook")
LEVEL_MESSAGE = "Level must be 'fatal', 'warning', or 'info'"
TYPE_MESSAGE = "Type must be 'discord', 'slack' or 'webhook'"
MAX_COOLDOWN = 86_400


def _level(value: object) -> str:
    if not isinstance(value, str) or value.strip().upper() not in LEVELS:
        raise ValueError(LEVEL_MESSAGE)
    return value.strip().upper()


def _type(value: object) -> str:
    if not isinstance(value, str) or value.strip().lower() not in TYPES:
        raise ValueError(TYPE_MESSAGE)
    return value.strip().lower()


def _prefix(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("pathnamePrefix must be a string")
    value = value.strip()
    if not value:
        return None
    if not value.startswith("/") or len(value) > 2048:
        raise ValueError("pathnamePrefix must start with '/' (at most 2048 characters)")
    return value


class _WebhookFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    pathnamePrefix: str | None = None
    statusMin: int | None = Field(default=None, ge=100, le=599)
    statusMax: int | None = Field(default=None, ge=100, le=599)
    cooldownSeconds: int | None = Field(default=None, ge=0, le=MAX_COOLDOWN)

    @field_validator("pathnamePrefix", mode="before")
    @classmethod
    def _check_prefix(cls, value: object) -> str | None:
        return _prefix(value)


class WebhookCreate(_WebhookFields):
    value: str = Field(description="The URL that receives notifications (https)")
    level: str = Field(description="Threshold: INFO, WARNING or FATAL (any case)")
    type: str | None = Field(
        default=None, description="discord | slack | webhook; guessed from the URL when omitted"
    )

    @field_validator("level", mode="before")
    @classmethod
    def _check_level(cls, value: object) -> str:
        return _level(value)

    @field_validator("type", mode="before")
    @classmethod
    def _check_type(cls, value: object) -> str | None:
        return None if value is None else _type(value)

    @field_validator("value", mode="before")
    @classmethod
    def _check_value(cls, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("Webhook value must not be empty")
        return value.strip()

    @model_validator(mode="after")
    def _check_range(self) -> WebhookCreate:
        _check_status_range(self.statusMin, self.statusMax)
        return self


class WebhookUpdate(_WebhookFields):
    value: str | None = None
    level: str | None = None
    type: str | None = None
    rotateSecret: bool = Field(default=False, description="Issue a new signing secret")

    @field_validator("level", mode="before")
    @classmethod
    def _check_level(cls, value: object) -> str | None:
        return None if value is None else _level(value)

    @field_validator("type", mode="before")
    @classmethod
    def _check_type(cls, value: object) -> str | None:
        return None if value is None else _type(value)

    @field_validator("value", mode="before")
    @classmethod
    def _check_value(cls, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ValueError("Webhook value must not be empty")
        return value.strip()


def _check_status_range(low: int | None, high: int | None) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError("statusMin must not be greater than statusMax")


class WebhookOut(BaseModel):
    id: str
    value: str
    level: str
    type: str
    trafficSourceId: str
    pathnamePrefix: str | None
    statusMin: int | None
    statusMax: int | None
    cooldownSeconds: int
    lastDeliveryStatus: Literal["delivered", "retrying", "failed"] | None
    lastDeliveryError: str | None
    lastDeliveryAt: Timestamp | None
    createdAt: Timestamp
    updatedAt: Timestamp


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="HMAC-SHA256 key of X-LogHarbor-Signature; shown only now, keep it safe"
    )


class WebhookUpdated(WebhookOut):
    secret: str | None = Field(
        default=None, description="Only after rotateSecret: the new key, shown only now"
    )


class WebhookTestOut(BaseModel):
    delivered: bool
    statusCode: int | None
    error: str | None
    webhook: WebhookOut


def webhook_out(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "value": row["value"],
        "level": row["level"],
        "type": row["type"],
        "trafficSourceId": row["traffic_source_id"],
        "pathnamePrefix": row["pathname_prefix"],
        "statusMin": row["status_min"],
        "statusMax": row["status_max"],
        "cooldownSeconds": row["cooldown_seconds"],
        "lastDeliveryStatus": row["last_delivery_status"],
        "lastDeliveryError": row["last_delivery_error"],
        "lastDeliveryAt": row["last_delivery_at"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


class DeliveryOut(BaseModel):
    """One group of identical records queued for a webhook, and how its delivery went."""

    id: str
    webhookId: str
    state: Literal["pending", "sending", "retrying", "delivered", "failed"]
    count: int
    firstAt: Timestamp
    lastAt: Timestamp
    attempts: int
    nextAttemptAt: Timestamp | None
    lastError: str | None
    deliveredAt: Timestamp | None
    exceptionId: str | None
    record: dict[str, Any]


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    meta: dict[str, int]


def delivery_out(row: RowMapping) -> dict[str, Any]:
    done = row["state"] in ("delivered", "failed")
    return {
        "id": row["id"],
        "webhookId": row["webhook_id"],
        "state": row["state"],
        "count": row["count"],
        "firstAt": row["first_at"],
        "lastAt": row["last_at"],
        "attempts": row["attempts"],
        "nextAttemptAt": None if done else row["next_attempt_at"],
        "lastError": row["last_error"],
        "deliveredAt": row["delivered_at"],
        "exceptionId": row["exception_id"],
        "record": row["sample"],
    }


class ExceptionOut(BaseModel):
    id: str
    trafficSourceId: str
    fingerprint: str
    status: Literal["open", "resolved"]
    title: str
    message: str
    kind: str
    method: str
    route: str
    httpStatus: int
    level: str
    count: int
    firstSeenAt: Timestamp
    lastSeenAt: Timestamp
    resolvedAt: Timestamp | None
    reopenedAt: Timestamp | None
    timesReopened: int
    sample: dict[str, Any]
    createdAt: Timestamp
    updatedAt: Timestamp


def exception_out(row: RowMapping) -> dict[str, Any]:
    title = f"{row['http_status']} {row['method']} {row['route']}"
    if row["message"]:
        title += f": {row['message']}"
    return {
        "id": row["id"],
        "trafficSourceId": row["traffic_source_id"],
        "fingerprint": row["fingerprint"],
        "status": row["status"],
        "title": title,
        "message": row["message"],
        "kind": row["kind"],
        "method": row["method"],
        "route": row["route"],
        "httpStatus": row["http_status"],
        "level": "FATAL",
        "count": row["count"],
        "firstSeenAt": row["first_seen_at"],
        "lastSeenAt": row["last_seen_at"],
        "resolvedAt": row["resolved_at"],
        "reopenedAt": row["reopened_at"],
        "timesReopened": row["times_reopened"],
        "sample": row["sample"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


class ExceptionPage(BaseModel):
    data: list[ExceptionOut]
    meta: dict[str, int]
