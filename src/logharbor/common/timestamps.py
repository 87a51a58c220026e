"""Timestamps: aware UTC datetimes with millisecond precision, rendered as ``...T16:00:05.000Z``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema


def utcnow() -> datetime:
    now = datetime.now(UTC)
    # Millisecond precision so that what we return is exactly what we stored and can filter on.
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat (C) rather than strftime: every answer renders several of these.
    return value.isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


def parse_iso(value: str) -> datetime:
    """Parse an ISO-8601 instant; naive values are taken as UTC. Raises ValueError."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+01:00 is a valid ISO string whose UTC instant is before year 1.
        raise ValueError("date-time out of range") from None


Timestamp = Annotated[
    datetime,
    PlainSerializer(iso, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "example": "2025-07-10T16:00:05.000Z"}
    ),
]
