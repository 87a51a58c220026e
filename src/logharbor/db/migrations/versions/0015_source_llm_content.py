"""source llm content

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04

Whether a traffic source's LLM calls are stored with their content (messages, system
instructions, output preview); on by default, as issue 15 asks.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, not batch mode: on SQLite batch mode rebuilds traffic_sources, and
    # dropping the old table (foreign keys on) cascaded to every record, call and rollup.
    op.add_column(
        "traffic_sources",
        sa.Column("capture_llm_content", sa.Boolean(), server_default=sa.true(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("traffic_sources", "capture_llm_content")  # SQLite >= 3.35 drops in place
