"""The LLM calls API's shapes (documented in /docs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from logharbor.common.timestamps import Timestamp


class GenerationOut(BaseModel):
    """An LLM call, as lists show it (content at the call's own URL)."""

    id: str
    trafficSourceId: str
    traceId: str | None
    spanId: str | None
    parentSpanId: str | None
    trafficRecordId: str | None = Field(description="The record of the request it was made under")
    route: str | None
    provider: str
    operation: str
    requestModel: str
    responseModel: str | None
    finishReasons: list[str] | None
    inputTokens: int | None
    outputTokens: int | None
    cachedTokens: int | None
    cost: float | None = Field(description="US dollars at the prices when it arrived")
    durationMs: float
    timeToFirstTokenMs: float | None
    streamed: bool
    errorType: str | None
    errorMessage: str | None
    promptId: str | None
    promptVersion: int | None
    outputPreview: str | None
    createdAt: Timestamp


class GenerationDetailOut(GenerationOut):
    responseId: str | None
    parameters: dict[str, Any] | None
    inputMessages: Any
    outputMessages: Any
    systemInstructions: Any


class TraceItemOut(BaseModel):
    kind: Literal["http", "llm", "span"]
    id: str
    name: str
    spanId: str | None
    parentSpanId: str | None
    start: Timestamp
    durationMs: float
    status: int | str
    failed: bool
    inputTokens: int | None = None
    outputTokens: int | None = None
    cost: float | None = None


class TraceOut(BaseModel):
    traceId: str
    trafficSourceId: str
    items: list[TraceItemOut]


class PriceIn(BaseModel):
    inputPerMillion: float = Field(ge=0, le=1_000_000, allow_inf_nan=False)
    outputPerMillion: float = Field(ge=0, le=1_000_000, allow_inf_nan=False)
    cachedInputPerMillion: float | None = Field(
        default=None, ge=0, le=1_000_000, allow_inf_nan=False
    )


class PriceOut(BaseModel):
    model: str
    inputPerMillion: float
    outputPerMillion: float
    cachedInputPerMillion: float | None
    source: Literal["own", "default"]
