"""Shape of ``GET /stats/:trafficSourceId`` and ``.../llm``: their queries and their answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, ValidationInfo

from logharbor.common.ids import is_uuid
from logharbor.common.timestamps import Timestamp, iso, parse_iso
from logharbor.stats.ranges import EARLIEST, LATEST


class Figures(BaseModel):
    count: int
    errors: int = Field(description="Records with status >= 400")
    serverErrors: int = Field(description="Records with status >= 500")
    errorRate: float = Field(description="errors / count (0 when there is no traffic)")
    avgLatency: float | None = Field(description="Mean elapsedTime, milliseconds")
    minLatency: float | None = None
    maxLatency: float | None = None


class WithPercentiles(Figures):
    p50: float | None = Field(description="Within ~2.2 % of the exact value (log histogram)")
    p95: float | None
    p99: float | None


class Point(Figures):
    time: Timestamp


class Group(WithPercentiles):
    key: str
    pathnameId: str | None = None
    pathname: str | None = None
    domainId: str | None = None
    domain: str | None = None
    method: str | None = None
    status: str | None = None


class StatsOut(BaseModel):
    trafficSourceId: str
    startDate: Timestamp = Field(
        description=(
            "Effective start: floored to the minute, or to the hour (day) where per-minute "
            "(per-hour) figures are no longer kept"
        )
    )
    endDate: Timestamp = Field(description="Effective end, exclusive: rounded up the same way")
    interval: str
    groupBy: str | None
    totals: WithPercentiles
    series: list[Point]
    groups: list[Group]


class LlmFigures(BaseModel):
    calls: int
    failedCalls: int
    inputTokens: int
    outputTokens: int
    cachedTokens: int
    cost: float = Field(description="US dollars, of the calls whose model has a price")
    unpricedCalls: int = Field(description="Calls whose model had no price when they arrived")
    avgDurationMs: float | None


class LlmPoint(LlmFigures):
    time: Timestamp


class LlmGroup(LlmFigures):
    route: str | None = Field(default=None, description="groupBy=route (null: none sent)")
    model: str | None = Field(default=None, description="groupBy=model (the answering model)")
    promptId: str | None = Field(default=None, description="groupBy=promptVersion")
    promptVersion: int | None = None
    promptTitle: str | None = None


class LlmStatsOut(BaseModel):
    trafficSourceId: str
    startDate: Timestamp
    endDate: Timestamp = Field(description="Exclusive")
    interval: str
    groupBy: str | None
    totals: LlmFigures
    series: list[LlmPoint]
    groups: list[LlmGroup] = Field(description="Costliest first (then most calls)")


# --- the query --------------------------------------------------------------------------------

MAX_GROUPS = 1000

GroupBy = Literal["pathname", "domain", "status", "method"]
Interval = Literal["1m", "5m", "15m", "1h", "1d"]
LlmGroupBy = Literal["route", "model", "promptVersion"]
LLM_GROUP_BYS: tuple[str, ...] = get_args(LlmGroupBy)
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"]


def _instant(value: object, info: ValidationInfo) -> object:
    """An ISO-8601 instant (a date alone is its midnight UTC); empty means the default."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = parse_iso(value)
        except ValueError:
            raise ValueError(f"{info.field_name} must be an ISO-8601 date-time") from None
    if isinstance(value, datetime) and not EARLIEST <= value.astimezone(UTC) <= LATEST:
        raise ValueError(f"{info.field_name} must be from {iso(EARLIEST)} to {iso(LATEST)}")
    return value


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _entity_id(value: str, info: ValidationInfo) -> str:
    if not is_uuid(value):
        raise ValueError(f"Invalid {info.field_name} format")
    return value.lower()


def _status_class(value: str) -> str:
    text = value.strip().lower()
    if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
        return text
    raise ValueError("status must be a class such as 2xx or 5xx")


Instant = Annotated[datetime | None, BeforeValidator(_instant)]
EntityId = Annotated[str | None, AfterValidator(_entity_id)]


class StatsQuery(BaseModel):
    """What ``GET /stats/:trafficSourceId`` takes as query parameters."""

    startDate: Instant = Field(default=None, description="ISO-8601; default endDate - 24h")
    endDate: Instant = Field(default=None, description="ISO-8601; default now")
    groupBy: GroupBy | None = None
    interval: Interval | None = Field(
        default=None, description="default: the finest that gives at most 300 points"
    )
    pathnameId: EntityId = None
    domainId: EntityId = None
    method: Annotated[Method | None, BeforeValidator(_upper)] = Field(
        default=None, description="any case"
    )
    status: Annotated[str | None, AfterValidator(_status_class)] = Field(
        default=None, description="status class: 2xx, 4xx, 5xx...", examples=["5xx"]
    )
    limit: int = Field(default=100, ge=1, le=MAX_GROUPS, description="max groups, by count")

    @property
    def status_class(self) -> int | None:
        return int(self.status[0]) if self.status else None
