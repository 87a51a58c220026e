"""prompt labels

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05

``prompt_labels``: named pointers ("production", "staging") at one version of a prompt, which
apps fetch their prompt by (``GET /prompts/resolve``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import logharbor.db.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompt_labels",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("prompt_id", sa.String(length=36), nullable=False),
        sa.Column("label", sa.String(length=50), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f("fk_prompt_labels_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_labels")),
        sa.UniqueConstraint("prompt_id", "label", name=op.f("uq_prompt_labels_prompt_id_label")),
    )


def downgrade() -> None:
    op.drop_table("prompt_labels")
