"""Reading the LLM rollups, segment by segment as queries.py reads the traffic ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from logharbor.common.ids import to_prefixed
from logharbor.db.tables import prompts
from logharbor.stats.llm_rollups import NO_PROMPT, SUM_COLUMNS
from logharbor.stats.queries import RollupSource, floor_epoch, segments
from logharbor.stats.rollups import RESOLUTIONS

GROUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "route": ("route",),
    "model": ("model",),
    "promptVersion": ("prompt_id", "prompt_version"),
}


@dataclass
class LlmFigures:
    calls: int = 0
    failed_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    unpriced_calls: int = 0
    duration_sum: float = 0.0

    def add(self, values: tuple[Any, ...]) -> None:
        for name, value in zip(SUM_COLUMNS, values, strict=True):
            setattr(self, name, getattr(self, name) + (value or 0))

    def merge(self, other: LlmFigures) -> None:
        self.add(tuple(getattr(other, name) for name in SUM_COLUMNS))


def _sums(table: Any) -> list[Any]:
    return [func.sum(table.c[name]) for name in SUM_COLUMNS]


def _where(table: Any, source_id: str, seg: tuple[int, int, int]) -> list[Any]:
    resolution, a, b = seg
    c = table.c
    return [
        c.traffic_source_id == source_id,
        c.resolution == resolution,
        c.bucket_start >= datetime.fromtimestamp(a, UTC),
        c.bucket_start < datetime.fromtimestamp(b, UTC),
    ]


def grouped(
    source: RollupSource, source_id: str, start: int, end: int, group_by: str | None
) -> dict[tuple[Any, ...], LlmFigures]:
    """Figures per group key over [start, end); one group, ``()``, without ``group_by``."""
    table = source.llm
    keys = [table.c[name] for name in GROUP_COLUMNS[group_by]] if group_by else []
    groups: dict[tuple[Any, ...], LlmFigures] = {}
    for seg in segments(start, end):
        query = select(*keys, *_sums(table)).where(*_where(table, source_id, seg))
        if keys:
            query = query.group_by(*keys)
        for row in source.run(query):
            values = tuple(row)
            if not values[len(keys)]:
                continue  # no calls in this segment (an aggregate without GROUP BY)
            key = values[: len(keys)]
            groups.setdefault(key, LlmFigures()).add(values[len(keys) :])
    return groups


def series(
    source: RollupSource, source_id: str, start: int, end: int, interval: int
) -> dict[int, LlmFigures]:
    """Figures per interval point (epoch seconds of the point's start)."""
    coarsest = max(res for res in RESOLUTIONS if interval % res == 0)
    table = source.llm
    c = table.c
    points: dict[int, LlmFigures] = {}
    for seg in segments(start, end, coarsest):
        query = (
            select(c.bucket_start, *_sums(table))
            .where(*_where(table, source_id, seg))
            .group_by(c.bucket_start)
        )
        for row in source.run(query):
            epoch = floor_epoch(int(row[0].timestamp()), interval)
            points.setdefault(epoch, LlmFigures()).add(tuple(row)[1:])
    return points


def prompt_titles(conn: Connection, prompt_ids: list[str]) -> dict[str, str]:
    wanted = sorted({p for p in prompt_ids if p != NO_PROMPT})
    if not wanted:
        return {}
    query = select(prompts.c.id, prompts.c.title).where(prompts.c.id.in_(wanted))
    return {pid: title for pid, title in conn.execute(query)}


def group_labels(group_by: str, key: tuple[Any, ...], titles: dict[str, str]) -> dict[str, Any]:
    """The API's fields of a group key ("" route or prompt: calls that named none)."""
    if group_by == "route":
        return {"route": key[0] or None}
    if group_by == "model":
        return {"model": key[0]}
    prompt_id, version = key
    if prompt_id == NO_PROMPT:
        return {"promptId": None, "promptVersion": None, "promptTitle": None}
    return {
        "promptId": to_prefixed("prompt", prompt_id),
        "promptVersion": version,
        # None once the prompt is deleted: its calls keep their figures.
        "promptTitle": titles.get(prompt_id),
    }
