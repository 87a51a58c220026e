"""trace ids, exceptions and log lines

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

- ``http_traffic`` and ``core_logs`` keep the W3C trace and span ids a record arrived with
  (OpenTelemetry spans, the collector's ``traceparent``), so that lists filter by trace and a
  log line finds the request of its trace; and the exception (type, message, stack trace,
  frames) raised while serving it, as JSON.
- ``core_logs`` also hold application log lines (OTLP logs): a ``message`` and the record's
  ``attributes``. A log line has no method, status or latency, so those columns become nullable.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


_WHERE = sa.text("trace_id IS NOT NULL")


def _trace_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("span_id", sa.String(length=16), nullable=True),
        sa.Column("exception", _json(), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("http_traffic") as batch:
        for column in _trace_columns():
            batch.add_column(column)
    op.create_index(
        "ix_http_traffic_traffic_source_id_trace_id",
        "http_traffic",
        ["traffic_source_id", "trace_id"],
        unique=False,
        sqlite_where=_WHERE,
        postgresql_where=_WHERE,
    )
    # On SQLite, nullability changes copy the table: a one-time cost proportional to its rows.
    with op.batch_alter_table("core_logs") as batch:
        for column in _trace_columns():
            batch.add_column(column)
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("attributes", _json(), nullable=True))
        batch.alter_column("status", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("method", existing_type=sa.String(length=10), nullable=True)
        batch.alter_column("elapsed_time", existing_type=sa.Float(), nullable=True)
    op.create_index(
        "ix_core_logs_traffic_source_id_trace_id",
        "core_logs",
        ["traffic_source_id", "trace_id"],
        unique=False,
        sqlite_where=_WHERE,
        postgresql_where=_WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_core_logs_traffic_source_id_trace_id", table_name="core_logs")
    # Log lines cannot live in the older shape (no method, status or latency).
    op.execute(sa.text("DELETE FROM core_logs WHERE status IS NULL"))
    with op.batch_alter_table("core_logs") as batch:
        batch.alter_column("elapsed_time", existing_type=sa.Float(), nullable=False)
        batch.alter_column("method", existing_type=sa.String(length=10), nullable=False)
        batch.alter_column("status", existing_type=sa.Integer(), nullable=False)
        for name in ("attributes", "message", "exception", "span_id", "trace_id"):
            batch.drop_column(name)
    op.drop_index("ix_http_traffic_traffic_source_id_trace_id", table_name="http_traffic")
    with op.batch_alter_table("http_traffic") as batch:
        for name in ("exception", "span_id", "trace_id"):
            batch.drop_column(name)
