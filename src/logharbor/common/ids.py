"""Identifiers: UUIDv7 everywhere in storage; PromptCrafter shows them as ``prefix<digits>``.

The PromptCrafter API documents ids such as ``prompt104``. We keep that shape but put the UUIDv7's
128-bit integer behind the prefix: time-ordered, unguessable, and convertible both ways without a
second column.
"""

from __future__ import annotations

import re
import uuid

import uuid6

_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_MAX_UUID_INT = (1 << 128) - 1


def new_id() -> str:
    return str(uuid6.uuid7())


def is_uuid(value: object) -> bool:
    return isinstance(value, str) and bool(_UUID_RE.match(value))


def to_prefixed(prefix: str, value: str) -> str:
    return f"{prefix}{uuid.UUID(value).int}"


def from_prefixed(prefix: str, value: object) -> str | None:
    """The UUID behind ``prefix<digits>``, or None when the value is not of that shape."""
    if not isinstance(value, str) or not value.startswith(prefix):
        return None
    digits = value[len(prefix) :]
    if not digits.isascii() or not digits.isdigit() or len(digits) > 39:
        return None
    number = int(digits)
    if number > _MAX_UUID_INT:
        return None
    return str(uuid.UUID(int=number))
