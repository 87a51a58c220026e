"""stats horizons

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23

How far back minute and hour rollups are kept, as the retention job leaves them
(see logharbor/stats/thinning.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import logharbor.db.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stats_horizons",
        sa.Column("resolution", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kept_from", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resolution", name=op.f("pk_stats_horizons")),
    )


def downgrade() -> None:
    op.drop_table("stats_horizons")
