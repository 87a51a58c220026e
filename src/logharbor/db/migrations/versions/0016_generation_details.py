"""generation details

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04

``generation_details``: the content of an LLM call that came in a GenAI log event
(``gen_ai.client.inference.operation.details``) before the call's span, kept until the span
arrives and takes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import logharbor.db.types

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "generation_details",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_generation_details"),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name="fk_generation_details_traffic_source_id_traffic_sources",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "traffic_source_id",
            "trace_id",
            "span_id",
            name="uq_generation_details_traffic_source_id_trace_id_span_id",
        ),
    )
    op.create_index(
        "ix_generation_details_traffic_source_id_created_at",
        "generation_details",
        ["traffic_source_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_generation_details_traffic_source_id_created_at", table_name="generation_details"
    )
    op.drop_table("generation_details")
