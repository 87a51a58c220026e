"""ui flashes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

One-time messages of the web UI across a redirect (Post/Redirect/Get), see logharbor/ui/flash.py.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import logharbor.db.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ui_flashes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("pad", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_ui_flashes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ui_flashes")),
    )
    with op.batch_alter_table("ui_flashes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ui_flashes_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("ui_flashes")
