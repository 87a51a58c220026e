"""per-minute rollups

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

Rollups of HTTP traffic per (source, resolution, bucket, domain, pathname, method, status class),
and their log-scale latency histograms. See logharbor/stats/rollups.py.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import logharbor.db.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _key(table: str, *, per_pathname: bool = False) -> list[sa.schema.SchemaItem]:
    columns: list[sa.Column[Any]] = [
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("resolution", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("bucket_start", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("domain_id", sa.String(length=36), nullable=False),
        sa.Column("pathname_id", sa.String(length=36), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("status_class", sa.Integer(), autoincrement=False, nullable=False),
    ]
    if per_pathname:
        columns = columns[:5]
    return [
        *columns,
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f(f"fk_{table}_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
    ]


_KEY_COLUMNS = [
    "traffic_source_id",
    "resolution",
    "bucket_start",
    "domain_id",
    "pathname_id",
    "method",
    "status_class",
]


def upgrade() -> None:
    op.create_table(
        "traffic_rollups",
        *_key("traffic_rollups"),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("latency_sum", sa.Float(), nullable=False),
        sa.Column("latency_min", sa.Float(), nullable=False),
        sa.Column("latency_max", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(*_KEY_COLUMNS, name=op.f("pk_traffic_rollups")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "traffic_rollup_latency",
        *_key("traffic_rollup_latency"),
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*_KEY_COLUMNS, "bucket", name=op.f("pk_traffic_rollup_latency")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "traffic_rollup_path_latency",
        *_key("traffic_rollup_path_latency", per_pathname=True),
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            *_KEY_COLUMNS[:5], "bucket", name=op.f("pk_traffic_rollup_path_latency")
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("traffic_rollup_path_latency")
    op.drop_table("traffic_rollup_latency")
    op.drop_table("traffic_rollups")
