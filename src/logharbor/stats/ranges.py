"""The time range and interval of a statistics query: read once here for every stats reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from logharbor.common.errors import BadRequest
from logharbor.common.timestamps import iso, parse_iso, utcnow
from logharbor.stats.queries import floor_epoch
from logharbor.stats.rollups import HOUR

INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
MAX_POINTS = 2000
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def parse_range(
    start_date: str | None, end_date: str | None, errors: dict[str, str]
) -> tuple[datetime, datetime]:
    """``(start, end)`` from ISO texts (default: the 24 hours before now, or before endDate);
    problems go to ``errors`` under the parameter's name."""
    end = utcnow()
    start = end - timedelta(days=1)
    for name, raw in (("endDate", end_date), ("startDate", start_date)):
        if raw is None or raw == "":
            continue
        try:
            value = parse_iso(raw)
        except ValueError:
            errors[name] = f"{name} must be an ISO-8601 date-time"
            continue
        if not EARLIEST <= value <= LATEST:
            # The range is widened to whole minutes (days, past the rollup horizons) and a
            # missing start is a day before the end: dates at the calendar's ends overflow.
            errors[name] = f"{name} must be from {iso(EARLIEST)} to {iso(LATEST)}"
            continue
        if name == "endDate":
            end = value
            if start_date is None or start_date == "":
                start = end - timedelta(days=1)
        else:
            start = value
    return start, end


def minute_bounds(start: datetime, end: datetime) -> tuple[int, int]:
    """Epoch seconds of the range widened to whole minutes."""
    first = floor_epoch(int(start.timestamp()), 60)
    last = -(-int(end.timestamp() + (end.microsecond > 0)) // 60) * 60
    return first, last


def auto_interval(seconds: int, finest: int = 60) -> str:
    for name, step in (("1m", 60), ("5m", 300), ("1h", 3600)):
        if step >= finest and seconds // step <= 300:
            return name
    return "1d"


def checked_step(interval: str | None, first: int, last: int, finest: int) -> tuple[str, int]:
    """The interval (chosen when None) and its seconds, refused when finer than the detail
    stored over the range or when it makes too many points."""
    interval = interval or auto_interval(last - first, finest)
    step = INTERVALS[interval]
    if step < finest:
        kept = "Per-minute figures" if finest == HOUR else "Per-hour figures"
        raise BadRequest(
            field_errors={
                "interval": f"{kept} this old are no longer kept: use interval "
                f"{auto_interval(0, finest)} or coarser, or a later startDate"
            }
        )
    points = len(range(floor_epoch(first, step), last, step))
    if points > MAX_POINTS:
        raise BadRequest(
            field_errors={
                "interval": f"{points} points; at most {MAX_POINTS}: use a wider interval"
            }
        )
    return interval, step
