"""llm rollups

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

Tokens and cost of LLM calls per route, model and prompt version over time, written at ingest
(see logharbor/stats/llm_rollups.py). The calls stored before it are rolled up here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import logharbor.db.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_KEY_COLUMNS = [
    "traffic_source_id",
    "resolution",
    "bucket_start",
    "route",
    "model",
    "prompt_id",
    "prompt_version",
]


def upgrade() -> None:
    op.create_table(
        "llm_rollups",
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("resolution", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("bucket_start", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("route", sa.String(length=500), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("prompt_id", sa.String(length=36), nullable=False),
        sa.Column("prompt_version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("failed_calls", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("unpriced_calls", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_llm_rollups_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(*_KEY_COLUMNS, name=op.f("pk_llm_rollups")),
        sqlite_with_rowid=False,
    )
    _backfill(op.get_bind())


_SUM_COLUMNS = [
    "calls",
    "failed_calls",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost",
    "unpriced_calls",
    "duration_sum",
]
_PAGE = 5_000


def _backfill(conn: sa.Connection) -> None:
    """The calls stored before this table existed (0012 stored them, nothing rolled them up):
    summed now into their buckets, as ingest sums every later call (``stats.llm_rollups``)."""
    from logharbor.ingest.events import GenerationEvent
    from logharbor.stats.llm_rollups import aggregate

    utc = logharbor.db.types.UTCDateTime(timezone=True)
    names = [
        "id",
        "traffic_source_id",
        "created_at",
        "provider",
        "request_model",
        "response_model",
        "route",
        "prompt_id",
        "prompt_version",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "cost",
        "duration_ms",
        "error_type",
    ]
    generations = sa.table(
        "generations", *(sa.column(name, utc if name == "created_at" else None) for name in names)
    )
    totals: dict[Any, list[Any]] = {}
    after = ""
    while True:
        rows = conn.execute(
            sa.select(generations)
            .where(generations.c.id > after)
            .order_by(generations.c.id)
            .limit(_PAGE)
        ).all()
        if not rows:
            break
        after = rows[-1].id
        events = [
            GenerationEvent(
                id=row.id,
                traffic_source_id=row.traffic_source_id,
                created_at=row.created_at,
                provider=row.provider,
                model=row.response_model or row.request_model,
                route=row.route,
                prompt_id=row.prompt_id,
                prompt_version=row.prompt_version,
                input_tokens=row.input_tokens,
                output_tokens=row.output_tokens,
                cached_tokens=row.cached_tokens,
                cost=row.cost,
                duration_ms=row.duration_ms,
                failed=row.error_type is not None,
            )
            for row in rows
        ]
        for key, figures in aggregate(events).items():
            held = totals.get(key)
            if held is None:
                totals[key] = figures
            else:
                totals[key] = [a + b for a, b in zip(held, figures, strict=True)]
    if not totals:
        return
    rollups = sa.table(
        "llm_rollups",
        *(sa.column(name, utc if name == "bucket_start" else None) for name in _KEY_COLUMNS),
        *(sa.column(name) for name in _SUM_COLUMNS),
    )
    inserts: list[dict[str, Any]] = []
    for key in sorted(totals):
        row = dict(zip(_KEY_COLUMNS, key, strict=True))
        row["bucket_start"] = datetime.fromtimestamp(row["bucket_start"], UTC)
        row.update(zip(_SUM_COLUMNS, totals[key], strict=True))
        inserts.append(row)
    for start in range(0, len(inserts), _PAGE):
        conn.execute(rollups.insert(), inserts[start : start + _PAGE])


def downgrade() -> None:
    op.drop_table("llm_rollups")
