"""webhooks, outbox, exceptions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import logharbor.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _dt() -> logharbor.db.types.UTCDateTime:
    return logharbor.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("value", sa.String(length=2048), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("pathname_prefix", sa.String(length=2048), nullable=True),
        sa.Column("status_min", sa.Integer(), nullable=True),
        sa.Column("status_max", sa.Integer(), nullable=True),
        sa.Column("cooldown_seconds", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("claimed_until", _dt(), nullable=True),
        sa.Column("claim_token", sa.String(length=36), nullable=True),
        sa.Column("next_send_at", _dt(), nullable=True),
        sa.Column("last_delivery_status", sa.String(length=20), nullable=True),
        sa.Column("last_delivery_error", sa.Text(), nullable=True),
        sa.Column("last_delivery_at", _dt(), nullable=True),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("updated_at", _dt(), nullable=False),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_webhooks_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhooks_traffic_source_id"), ["traffic_source_id"], unique=False
        )

    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("webhook_id", sa.String(length=36), nullable=False),
        sa.Column("group_key", sa.String(length=64), nullable=False),
        sa.Column("pending_key", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sample", _json(), nullable=False),
        sa.Column("exception_id", sa.String(length=36), nullable=True),
        sa.Column("exception_state", sa.String(length=10), nullable=True),
        sa.Column("first_at", _dt(), nullable=False),
        sa.Column("last_at", _dt(), nullable=False),
        sa.Column("next_attempt_at", _dt(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("delivered_at", _dt(), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_outbox_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_outbox")),
        sa.UniqueConstraint(
            "webhook_id", "pending_key", name=op.f("uq_webhook_outbox_webhook_id_pending_key")
        ),
    )
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_outbox_state_next_attempt_at"),
            ["state", "next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "exceptions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("route", sa.String(length=2048), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", _dt(), nullable=False),
        sa.Column("last_seen_at", _dt(), nullable=False),
        sa.Column("resolved_at", _dt(), nullable=True),
        sa.Column("reopened_at", _dt(), nullable=True),
        sa.Column("times_reopened", sa.Integer(), nullable=False),
        sa.Column("sample", _json(), nullable=False),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("updated_at", _dt(), nullable=False),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_exceptions_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exceptions")),
        sa.UniqueConstraint(
            "traffic_source_id",
            "fingerprint",
            name=op.f("uq_exceptions_traffic_source_id_fingerprint"),
        ),
    )
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_exceptions_traffic_source_id_status_last_seen_at"),
            ["traffic_source_id", "status", "last_seen_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exceptions_traffic_source_id_status_last_seen_at"))
    op.drop_table("exceptions")
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_state_next_attempt_at"))
    op.drop_table("webhook_outbox")
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhooks_traffic_source_id"))
    op.drop_table("webhooks")
