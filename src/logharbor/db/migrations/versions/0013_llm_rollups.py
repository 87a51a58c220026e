"""llm rollups

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

Tokens and cost of LLM calls per route, model and prompt version over time, written at ingest
(see logharbor/stats/llm_rollups.py).
"""

from __future__ import annotations

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


def downgrade() -> None:
    op.drop_table("llm_rollups")
