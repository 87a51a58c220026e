"""Writing the LLM rollups: fold one transaction's LLM calls into minute, hour and day rows.

Built like the traffic rollups (rollups.py): calls are summed in Python first, so each (key,
bucket) is written once per transaction with an upsert that adds to what is there, in key order
so that concurrent PostgreSQL transactions lock rows in the same order. The stored calls stay the
truth; these rows make "tokens and cost per route, model, prompt version" a read of a few
buckets per key over any range.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from logharbor.db import events_schema
from logharbor.db.bulk import BulkInsert, upsertable_insert
from logharbor.db.clickhouse_sql import to_events_row
from logharbor.db.tables import llm_rollups
from logharbor.db.writer import RowSink, WriteTx
from logharbor.ingest.events import GenerationEvent
from logharbor.stats.rollups import RESOLUTIONS

KEY_COLUMNS = (
    "traffic_source_id",
    "resolution",
    "bucket_start",
    "route",
    "model",
    "prompt_id",
    "prompt_version",
)
SUM_COLUMNS = (
    "calls",
    "failed_calls",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost",
    "unpriced_calls",
    "duration_sum",
)
# Key columns are NOT NULL (primary key): what a call does not name is filed under these.
NO_ROUTE, NO_PROMPT, NO_VERSION = "", "", 0
# The key columns' widths (db/tables.py): a longer route is one nobody templated.
ROUTE_CHARS, MODEL_CHARS = 500, 200

# (source, resolution, bucket start in epoch seconds, route, model, prompt id, prompt version)
Key = tuple[str, int, int, str, str, str, int]


def _figures(event: GenerationEvent) -> list[Any]:
    return [
        1,
        1 if event.failed else 0,
        event.input_tokens or 0,
        event.output_tokens or 0,
        event.cached_tokens or 0,
        event.cost or 0.0,
        1 if event.cost is None else 0,
        event.duration_ms,
    ]


def aggregate(events: Iterable[GenerationEvent]) -> dict[Key, list[Any]]:
    rows: dict[Key, list[Any]] = {}
    for event in events:
        epoch = int(event.created_at.timestamp())
        route = (event.route or NO_ROUTE)[:ROUTE_CHARS]
        model = event.model[:MODEL_CHARS]
        prompt = event.prompt_id or NO_PROMPT
        version = event.prompt_version if event.prompt_id and event.prompt_version else NO_VERSION
        figures = _figures(event)
        for resolution in RESOLUTIONS:
            key = (
                event.traffic_source_id,
                resolution,
                epoch - epoch % resolution,
                route,
                model,
                prompt,
                version,
            )
            row = rows.get(key)
            if row is None:
                rows[key] = list(figures)
            else:
                for i, value in enumerate(figures):
                    row[i] += value
    return rows


def _params(rows: dict[Key, list[Any]]) -> list[dict[str, Any]]:
    params = []
    for key in sorted(rows):
        p: dict[str, Any] = dict(zip(KEY_COLUMNS, key, strict=True))
        p["bucket_start"] = datetime.fromtimestamp(p["bucket_start"], UTC)
        p.update(zip(SUM_COLUMNS, rows[key], strict=True))
        params.append(p)
    return params


def _upsert(dialect: str) -> Any:
    stmt = upsertable_insert(dialect, llm_rollups)
    return stmt.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={name: llm_rollups.c[name] + stmt.excluded[name] for name in SUM_COLUMNS},
    )


_upsert_rows = BulkInsert(llm_rollups, (*KEY_COLUMNS, *SUM_COLUMNS), upsert=_upsert)


def record(conn: Connection, events: Sequence[GenerationEvent]) -> None:
    rows = aggregate(events)
    if rows:
        _upsert_rows(conn, _params(rows))


class EventsStoreLlmRollups:
    """The subscriber that keeps these rollups on ClickHouse when events live there: the same
    rows, staged on the write transaction and appended with the calls' own insert (as
    ``rollups.EventsStoreRollups`` does for traffic)."""

    def __init__(self, sink: RowSink) -> None:
        self.sink = sink

    def __call__(self, tx: WriteTx, events: Sequence[GenerationEvent]) -> None:
        rows = [to_events_row(events_schema.llm_rollups, p) for p in _params(aggregate(events))]
        tx.stage(self.sink, "llm_rollups", rows)
