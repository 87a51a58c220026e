"""PromptCrafter shapes: request bodies (validated) and responses (keys in the documented order).

Documented keys come first, in the order of promptcrafter-original.md §2; LogHarbor's additions
(``version``, ``promptVersion``) follow them. ``notes`` and ``score`` are left out of a log when
they were not supplied, never sent as null.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    model_validator,
)
from sqlalchemy import RowMapping

from logharbor.common.ids import to_prefixed
from logharbor.common.timestamps import Timestamp, iso

TITLE_MIN, TITLE_MAX = 3, 100
MODEL_MAX = 200
TAGS_MAX, TAG_MAX = 100, 100
SCORE_MIN, SCORE_MAX = 0, 10


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate (legal in JSON "\ud800") cannot be
    # encoded; both would otherwise fail at INSERT time as a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Text = Annotated[StrictStr, AfterValidator(_storable)]
Title = Annotated[
    StrictStr,
    Field(min_length=TITLE_MIN, max_length=TITLE_MAX, examples=["Product review summary"]),
    AfterValidator(_storable),
    AfterValidator(_not_blank),
]
Content = Annotated[StrictStr, Field(min_length=1), AfterValidator(_storable)]
ModelName = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MODEL_MAX, examples=["GPT-4o"]),
    AfterValidator(_storable),
    AfterValidator(_not_blank),
]
Tag = Annotated[StrictStr, Field(min_length=1, max_length=TAG_MAX), AfterValidator(_storable)]
Tags = Annotated[list[Tag], Field(max_length=TAGS_MAX, examples=[["summaries", "reviews"]])]


class PromptIn(BaseModel):
    """A new prompt. ``_id``, ``ownerId`` and timestamps are set by the server (ignored if sent)."""

    model_config = ConfigDict(extra="ignore")

    title: Title
    content: Content
    model: ModelName
    tags: Tags | None = None


class PromptPatch(BaseModel):
    """Any subset of the fields; omitted ones are unchanged, ``tags`` replaces the whole list."""

    model_config = ConfigDict(extra="ignore")

    title: Title | None = None
    content: Content | None = None
    model: ModelName | None = None
    tags: Tags | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        # A prompt field cannot be cleared; null is a client bug, not "leave unchanged".
        if isinstance(data, dict):
            for name in ("title", "content", "model", "tags"):
                if name in data and data[name] is None:
                    raise ValueError(f"{name} must not be null")
        return data


class LogIn(BaseModel):
    """An output produced by a prompt. ``model`` is accepted in place of ``modelUsed``."""

    model_config = ConfigDict(extra="ignore")

    promptId: Annotated[StrictStr, Field(min_length=1, examples=["prompt3"])]
    output: Text
    modelUsed: ModelName
    notes: Text | None = None
    score: Annotated[StrictInt, Field(ge=SCORE_MIN, le=SCORE_MAX)] | None = None
    promptVersion: (
        Annotated[
            StrictInt,
            Field(
                ge=1, description="The prompt version that produced the output; default current."
            ),
        ]
        | None
    ) = None

    @model_validator(mode="before")
    @classmethod
    def _model_alias(cls, data: Any) -> Any:
        # The original OpenAPI file names the field `model`; clients generated from it send that.
        if isinstance(data, dict) and "modelUsed" not in data and "model" in data:
            return {**data, "modelUsed": data["model"]}
        return data


# --- responses (documentation models; handlers build the dicts below directly) ---------------


class PromptOut(BaseModel):
    id: str = Field(serialization_alias="_id", examples=["prompt104"])
    ownerId: str
    title: str
    content: str
    model: str
    tags: list[str]
    createdAt: Timestamp
    updatedAt: Timestamp
    version: int = Field(description="LogHarbor: bumped by every PATCH that changes the prompt.")


class LogPatch(BaseModel):
    """What a log's reader may add to it: a score and notes (null clears either)."""

    model_config = ConfigDict(extra="forbid")

    score: Annotated[StrictInt, Field(ge=SCORE_MIN, le=SCORE_MAX)] | None = None
    notes: Text | None = None


class LogGenerationOut(BaseModel):
    id: str
    trafficSourceId: str | None
    traceId: str | None
    inputTokens: int | None
    outputTokens: int | None
    cost: float | None
    durationMs: float | None


class LogOut(BaseModel):
    id: str = Field(serialization_alias="_id", examples=["log106"])
    promptId: str
    output: str
    notes: str | None = Field(default=None, description="Absent when not supplied.")
    modelUsed: str
    score: int | None = Field(default=None, description="0-10; absent when not supplied.")
    createdAt: Timestamp
    promptVersion: int = Field(description="LogHarbor: the prompt version it was produced from.")
    generation: LogGenerationOut | None = Field(
        default=None,
        description="LogHarbor: the app's LLM call it was made from (absent for logs posted here)",
    )


class VersionOut(BaseModel):
    version: int
    title: str
    content: str
    model: str
    tags: list[str]
    createdAt: Timestamp = Field(description="When this version became the prompt's content.")
    current: bool
    labels: list[str] = Field(description="LogHarbor: the labels pointing at this version.")


LABEL_PATTERN = r"^[a-z0-9_-]{1,50}$"


class LabelIn(BaseModel):
    """Where a label points: one existing version of the prompt."""

    model_config = ConfigDict(extra="ignore")

    version: Annotated[StrictInt, Field(ge=1, examples=[3])]


class LabelOut(BaseModel):
    promptId: str
    label: str
    version: int


class ResolvedPromptOut(BaseModel):
    id: str = Field(serialization_alias="_id", examples=["prompt104"])
    title: str
    content: str
    model: str
    tags: list[str]
    version: int = Field(description="The version served (the label's, or the current one).")
    labels: list[str] = Field(description="The labels pointing at that version.")
    createdAt: Timestamp = Field(description="When that version became the prompt's content.")
    etag: str = Field(description="Changes whenever the version served changes.")


class ScoreSummary(BaseModel):
    logCount: int
    scoredCount: int
    averageScore: float | None = Field(description="Mean of the scored logs; null if none.")
    scoreDistribution: dict[str, int] = Field(description='Logs per score, "0" to "10".')


class ModelStats(ScoreSummary):
    modelUsed: str


class VersionStats(ScoreSummary):
    promptVersion: int


class PromptStatsOut(ScoreSummary):
    promptId: str
    byModel: list[ModelStats]
    byVersion: list[VersionStats]


class MessageOut(BaseModel):
    error: str


# --- rows to JSON -------------------------------------------------------------------------------


def prompt_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "_id": to_prefixed("prompt", row["id"]),
        "ownerId": to_prefixed("user", row["owner_id"]),
        "title": row["title"],
        "content": row["content"],
        "model": row["model"],
        "tags": list(row["tags"] or []),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "version": row["version"],
    }


def log_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "_id": to_prefixed("log", row["id"]),
        "promptId": to_prefixed("prompt", row["prompt_id"]),
        "output": row["output"],
    }
    if row["notes"] is not None:
        body["notes"] = row["notes"]
    body["modelUsed"] = row["model_used"]
    if row["score"] is not None:
        body["score"] = row["score"]
    body["createdAt"] = iso(row["created_at"])
    body["promptVersion"] = row["prompt_version"]
    call_id = row.get("call_id")
    if call_id is not None:  # made from an app's LLM call, still stored: its figures
        body["generation"] = {
            "id": call_id,
            "trafficSourceId": row.get("call_traffic_source_id"),
            "traceId": row.get("call_trace_id"),
            "inputTokens": row.get("call_input_tokens"),
            "outputTokens": row.get("call_output_tokens"),
            "cost": row.get("call_cost"),
            "durationMs": row.get("call_duration_ms"),
        }
    return body


def version_json(
    row: RowMapping | dict[str, Any], *, current: bool, labels: Sequence[str] = ()
) -> dict[str, Any]:
    return {
        "version": row["version"],
        "title": row["title"],
        "content": row["content"],
        "model": row["model"],
        "tags": list(row["tags"] or []),
        "createdAt": iso(row["created_at"]),
        "current": current,
        "labels": list(labels),
    }


def resolved_json(
    prompt_id: str, version: RowMapping | dict[str, Any], labels: Sequence[str]
) -> dict[str, Any]:
    public_id = to_prefixed("prompt", prompt_id)
    return {
        "_id": public_id,
        "title": version["title"],
        "content": version["content"],
        "model": version["model"],
        "tags": list(version["tags"] or []),
        "version": version["version"],
        "labels": list(labels),
        "createdAt": iso(version["created_at"]),
        "etag": f"{public_id}:{version['version']}",
    }


def _summary(counts: dict[int | None, int]) -> dict[str, Any]:
    scored = {score: n for score, n in counts.items() if score is not None}
    scored_count = sum(scored.values())
    average = sum(score * n for score, n in scored.items()) / scored_count if scored_count else None
    return {
        "logCount": sum(counts.values()),
        "scoredCount": scored_count,
        "averageScore": round(average, 2) if average is not None else None,
        "scoreDistribution": {str(s): scored.get(s, 0) for s in range(SCORE_MIN, SCORE_MAX + 1)},
    }


def stats_json(prompt_id: str, groups: Sequence[RowMapping]) -> dict[str, Any]:
    """Fold the (model, version, score) counts into totals, per model and per version."""
    overall: dict[int | None, int] = {}
    by_model: dict[str, dict[int | None, int]] = {}
    by_version: dict[int, dict[int | None, int]] = {}
    for group in groups:
        score, n = group["score"], group["n"]
        for counts in (
            overall,
            by_model.setdefault(group["model_used"], {}),
            by_version.setdefault(group["prompt_version"], {}),
        ):
            counts[score] = counts.get(score, 0) + n
    models = [{"modelUsed": m, **_summary(c)} for m, c in by_model.items()]
    models.sort(key=lambda item: (-item["logCount"], item["modelUsed"]))
    return {
        "promptId": to_prefixed("prompt", prompt_id),
        **_summary(overall),
        "byModel": models,
        "byVersion": [{"promptVersion": v, **_summary(by_version[v])} for v in sorted(by_version)],
    }
