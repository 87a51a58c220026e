"""LLM calls (generations), the other spans of a trace, and per-user model prices

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04

- ``generations``: one row per LLM call, tied to the HTTP traffic of its trace by trace id.
- ``spans``: the spans of a trace that are neither HTTP exchanges nor LLM calls.
- ``model_prices``: a user's own prices per model (defaults ship with the code).
- ``prompt_logs.generation_id``: a log made from an app's LLM call names it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import logharbor.db.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _utc() -> sa.types.TypeEngine[Any]:
    return logharbor.db.types.UTCDateTime(timezone=True)


def _source_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["traffic_source_id"],
        ["traffic_sources.id"],
        name=f"fk_{table}_traffic_source_id_traffic_sources",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "generations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("span_id", sa.String(length=16), nullable=True),
        sa.Column("parent_span_id", sa.String(length=16), nullable=True),
        sa.Column("traffic_record_id", sa.String(length=36), nullable=True),
        sa.Column("route", sa.String(length=2048), nullable=True),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("operation", sa.String(length=50), nullable=False),
        sa.Column("request_model", sa.String(length=200), nullable=False),
        sa.Column("response_model", sa.String(length=200), nullable=True),
        sa.Column("response_id", sa.String(length=200), nullable=True),
        sa.Column("finish_reasons", _json(), nullable=True),
        sa.Column("parameters", _json(), nullable=True),
        sa.Column("input_messages", _json(), nullable=True),
        sa.Column("output_messages", _json(), nullable=True),
        sa.Column("system_instructions", _json(), nullable=True),
        sa.Column("output_preview", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("cached_tokens", sa.Integer(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("time_to_first_token_ms", sa.Float(), nullable=True),
        sa.Column("streamed", sa.Boolean(), nullable=False),
        sa.Column("error_type", sa.String(length=300), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("prompt_id", sa.String(length=36), nullable=True),
        sa.Column("prompt_version", sa.Integer(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_generations"),
        _source_fk("generations"),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name="fk_generations_prompt_id_prompts",
            ondelete="SET NULL",
        ),
    )
    op.create_index(
        "ix_generations_traffic_source_id_created_at",
        "generations",
        ["traffic_source_id", "created_at"],
    )
    for column in ("trace_id", "prompt_id"):
        where = sa.text(f"{column} IS NOT NULL")
        second = "trace_id" if column == "trace_id" else "created_at"
        first = "traffic_source_id" if column == "trace_id" else "prompt_id"
        op.create_index(
            f"ix_generations_{first}_{second}",
            "generations",
            [first, second],
            sqlite_where=where,
            postgresql_where=where,
        )
    op.create_table(
        "spans",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("parent_span_id", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("attributes", _json(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_spans"),
        _source_fk("spans"),
    )
    op.create_index(
        "ix_spans_traffic_source_id_trace_id", "spans", ["traffic_source_id", "trace_id"]
    )
    op.create_index(
        "ix_spans_traffic_source_id_created_at", "spans", ["traffic_source_id", "created_at"]
    )
    op.create_table(
        "model_prices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("input_per_million", sa.Float(), nullable=False),
        sa.Column("output_per_million", sa.Float(), nullable=False),
        sa.Column("cached_input_per_million", sa.Float(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_prices"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_model_prices_user_id_users", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("user_id", "model", name="uq_model_prices_user_id_model"),
    )
    with op.batch_alter_table("prompt_logs") as batch:
        batch.add_column(sa.Column("generation_id", sa.String(length=36), nullable=True))
        batch.create_foreign_key(
            "fk_prompt_logs_generation_id_generations",
            "generations",
            ["generation_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("prompt_logs") as batch:
        batch.drop_constraint("fk_prompt_logs_generation_id_generations", type_="foreignkey")
        batch.drop_column("generation_id")
    op.drop_table("model_prices")
    op.drop_table("spans")
    op.drop_table("generations")
