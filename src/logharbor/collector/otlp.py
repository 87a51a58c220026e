"""OTLP/HTTP JSON, as the collector writes it: attribute values, and a batch of spans.

The specification's JSON mapping: trace and span ids in lower-case hex, 64-bit integers as
strings, enums as numbers, attributes as ``[{"key", "value": {"stringValue": ...}}]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SCOPE_NAME = "logharbor.collector"
SPAN_KIND_CLIENT = 3
STATUS_ERROR = 2


def any_value(value: Any) -> dict[str, Any]:
    """An OTLP ``AnyValue``; a value of another type is sent as its text."""
    kind = type(value)
    # Exact types first (most attributes are text): an isinstance chain per value adds up over
    # the twenty-odd attributes of every span.
    if kind is str:
        return {"stringValue": value}
    if kind is int:
        return {"intValue": str(value)}
    # bool before int: it is an int to Python.
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [any_value(item) for item in value]}}
    return {"stringValue": str(value)}


def attributes(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``KeyValue`` pairs; None values are left out (an absent attribute, not a null one)."""
    return [
        {"key": key, "value": any_value(value)}
        for key, value in values.items()
        if value is not None
    ]


def export_request(
    spans: Sequence[Mapping[str, Any]], resource: Mapping[str, Any], version: str
) -> dict[str, Any]:
    """An ``ExportTraceServiceRequest``: one resource, one scope, these spans."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attributes(resource)},
                "scopeSpans": [
                    {"scope": {"name": SCOPE_NAME, "version": version}, "spans": list(spans)}
                ],
            }
        ]
    }
