"""Time ranges offered by the pages: presets relative to now, or a custom [from, to)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from logharbor.common.errors import BadRequest
from logharbor.common.timestamps import iso, parse_iso, utcnow

PRESETS: dict[str, tuple[str, timedelta]] = {
    "15m": ("Last 15 minutes", timedelta(minutes=15)),
    "1h": ("Last hour", timedelta(hours=1)),
    "6h": ("Last 6 hours", timedelta(hours=6)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}


@dataclass(frozen=True)
class TimeRange:
    key: str  # a preset, "custom" or "all"
    start: datetime | None
    end: datetime | None

    @property
    def start_iso(self) -> str:
        return iso(self.start) if self.start else ""

    @property
    def end_iso(self) -> str:
        return iso(self.end) if self.end else ""


def parse_range(
    key: str | None, start: str | None, end: str | None, *, default: str = "all"
) -> TimeRange:
    """A range from the filter form; bad dates are a 400 naming the field."""
    key = key or default
    if key == "all":
        return TimeRange("all", None, None)
    if key in PRESETS:
        now = utcnow()
        return TimeRange(key, now - PRESETS[key][1], None)
    if key != "custom":
        raise BadRequest(field_errors={"range": "Unknown time range"})
    values: dict[str, datetime | None] = {}
    errors: dict[str, str] = {}
    for name, raw in (("startDate", start), ("endDate", end)):
        values[name] = None
        if raw:
            try:
                values[name] = parse_iso(raw)
            except ValueError:
                errors[name] = f"{name} must be an ISO-8601 date-time"
    lower, upper = values["startDate"], values["endDate"]
    if not errors and lower and upper and lower >= upper:
        errors["startDate"] = "The start must be before the end"
    if errors:
        raise BadRequest("Invalid time range", field_errors=errors)
    return TimeRange("custom", lower, upper)
