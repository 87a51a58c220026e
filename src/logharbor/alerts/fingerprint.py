"""Stable fingerprints: which records are "the same problem".

A fingerprint is the SHA-256 (hex) of these lines, joined by ``\\n``::

    v1
    <traffic source id>
    <METHOD>
    <route>
    <status>
    <message>

- **route**: a core log's pathname is already a template (``/users/:id``) and is used as is. A
  traffic record's concrete pathname is templated: the query string is dropped and every path
  segment that is a number, a UUID, or a long hex/base64-ish token becomes ``:id``, so
  ``/users/42`` and ``/users/43`` group together (and with a core log on ``/users/:id``).
- **message**: from the response preview: the ``message``/``error``/``detail`` string of a JSON
  object when the preview parses as one, else its first non-empty line; then UUIDs become
  ``<uuid>``, long hex runs ``<hex>`` and digit runs ``<n>``, whitespace is collapsed and the
  result is cut at 200 characters. ``User 42 not found`` and ``User 7 not found`` are one group.

The version line lets the rules change later without silently merging old and new groups.

A record that carries an exception with a type (OpenTelemetry's ``exception`` event, the
collector's capture) is grouped by that type and its innermost frames instead
(``exception_fingerprint``): the same bug raised under many routes is one problem.
"""

from __future__ import annotations

import hashlib
import json
import re

from logharbor.ingest.events import TrafficEvent
from logharbor.ingest.records import ExceptionInfo
from logharbor.traffic.normalize import template_pathname

VERSION = "v1"
MESSAGE_CHARS = 200

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"\b(?:0x)?[0-9a-fA-F]{12,}\b")
_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")
_MESSAGE_KEYS = ("message", "error", "detail", "title", "name")


def route_of(event: TrafficEvent) -> str:
    if event.kind == "core":
        return event.pathname or "/"
    return template_pathname(event.pathname)


def _message_text(preview: str) -> str:
    text = preview.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, dict):
            for key in _MESSAGE_KEYS:
                value = document.get(key)
                if isinstance(value, str) and value.strip():
                    return value
                if isinstance(value, dict):
                    inner = value.get("message")
                    if isinstance(inner, str) and inner.strip():
                        return inner
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def normalize_message(preview: str | None) -> str:
    if not preview:
        return ""
    text = _message_text(preview)
    text = _UUID.sub("<uuid>", text)
    text = _HEX.sub("<hex>", text)
    text = _DIGITS.sub("<n>", text)
    text = _SPACE.sub(" ", text).strip()
    return text[:MESSAGE_CHARS]


def fingerprint(source_id: str, method: str, route: str, status: int, message: str) -> str:
    material = "\n".join((VERSION, source_id, method.upper(), route, str(status), message))
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


# How many innermost frames identify where an exception was raised: enough to tell two call
# sites of one exception type apart, few enough that a change far up the stack does not split a
# group. Frames name a file and a function, never a line: lines move with every deploy.
TOP_FRAMES = 3


def exception_fingerprint(source_id: str, info: ExceptionInfo, route: str) -> str:
    """Exceptions with a type group by type and their top frames; without frames, by type and
    route. Their own version line keeps them apart from the route-and-status groups."""
    where = [f"{frame.file}:{frame.function}" for frame in info.frames[-TOP_FRAMES:]]
    material = "\n".join(("v1-exception", source_id, info.type, *(where or [route])))
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


def of_event(event: TrafficEvent) -> tuple[str, str, str]:
    """``(fingerprint, route, message)`` of one record."""
    route = route_of(event)
    info = event.exception
    if info is not None and info.type:
        message = normalize_message(info.message)
        summary = f"{info.type}: {message}" if message else info.type
        return (
            exception_fingerprint(event.traffic_source_id, info, route),
            route,
            summary[:MESSAGE_CHARS],
        )
    message = normalize_message(event.response_preview)
    return (
        fingerprint(event.traffic_source_id, event.method, route, event.status, message),
        route,
        message,
    )
