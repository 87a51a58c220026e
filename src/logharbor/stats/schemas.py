"""Shape of ``GET /stats/:trafficSourceId``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from logharbor.common.timestamps import Timestamp


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
