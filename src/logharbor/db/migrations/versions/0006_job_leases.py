"""job leases

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

A lease row per periodic job (retention), so that one process of many runs each period.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import logharbor.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _dt() -> logharbor.db.types.UTCDateTime:
    return logharbor.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("claim_token", sa.String(length=36), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", _dt(), nullable=True),
        sa.Column("next_run_at", _dt(), nullable=False),
        sa.Column("last_finished_at", _dt(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
