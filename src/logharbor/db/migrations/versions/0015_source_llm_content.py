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
    with op.batch_alter_table("traffic_sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("capture_llm_content", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("traffic_sources", schema=None) as batch_op:
        batch_op.drop_column("capture_llm_content")
