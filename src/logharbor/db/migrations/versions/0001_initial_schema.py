"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 19:36:16.565933
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import logharbor.db.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("utc", sa.Integer(), nullable=False),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "prompts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_prompts_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompts")),
    )
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_prompts_owner_id_created_at"), ["owner_id", "created_at"], unique=False
        )

    op.create_table(
        "traffic_sources",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("traffic_domain", sa.String(length=2048), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_traffic_sources_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_traffic_sources")),
    )
    with op.batch_alter_table("traffic_sources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_traffic_sources_user_id_created_at"),
            ["user_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "core_pathnames",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("value", sa.String(length=2048), nullable=False),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_core_pathnames_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_pathnames")),
        sa.UniqueConstraint(
            "traffic_source_id", "value", name=op.f("uq_core_pathnames_traffic_source_id_value")
        ),
    )
    op.create_table(
        "domains",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("value", sa.String(length=2048), nullable=False),
        sa.Column("protocol", sa.String(length=5), nullable=False),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_domains_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domains")),
        sa.UniqueConstraint(
            "traffic_source_id", "value", name=op.f("uq_domains_traffic_source_id_value")
        ),
    )
    op.create_table(
        "ingest_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_ingest_keys_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_ingest_keys_key_hash")),
    )
    with op.batch_alter_table("ingest_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ingest_keys_traffic_source_id"), ["traffic_source_id"], unique=False
        )

    op.create_table(
        "prompt_logs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("prompt_id", sa.String(length=36), nullable=False),
        sa.Column("prompt_version", sa.Integer(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("model_used", sa.String(length=200), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f("fk_prompt_logs_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_logs")),
    )
    with op.batch_alter_table("prompt_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_prompt_logs_prompt_id_created_at"),
            ["prompt_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "prompt_versions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("prompt_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f("fk_prompt_versions_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_versions")),
        sa.UniqueConstraint(
            "prompt_id", "version", name=op.f("uq_prompt_versions_prompt_id_version")
        ),
    )
    op.create_table(
        "requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=True),
        sa.Column("owner_user_id", sa.String(length=36), nullable=True),
        sa.Column(
            "headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("body_preview", sa.Text(), nullable=True),
        sa.Column("body_size", sa.Integer(), nullable=False),
        sa.Column("body_truncated", sa.Boolean(), nullable=False),
        sa.Column(
            "query_params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_user_id"],
            ["users.id"],
            name=op.f("fk_requests_owner_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_requests_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requests")),
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_requests_owner_user_id"), ["owner_user_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_requests_traffic_source_id"), ["traffic_source_id"], unique=False
        )

    op.create_table(
        "responses",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=True),
        sa.Column("owner_user_id", sa.String(length=36), nullable=True),
        sa.Column(
            "headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("body_preview", sa.Text(), nullable=True),
        sa.Column("body_size", sa.Integer(), nullable=False),
        sa.Column("body_truncated", sa.Boolean(), nullable=False),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_user_id"],
            ["users.id"],
            name=op.f("fk_responses_owner_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_responses_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responses")),
    )
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_responses_owner_user_id"), ["owner_user_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_responses_traffic_source_id"), ["traffic_source_id"], unique=False
        )

    op.create_table(
        "traffic_source_shares",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("permission", sa.String(length=20), nullable=False),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_traffic_source_shares_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_traffic_source_shares_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_traffic_source_shares")),
        sa.UniqueConstraint(
            "traffic_source_id",
            "user_id",
            name=op.f("uq_traffic_source_shares_traffic_source_id_user_id"),
        ),
    )
    with op.batch_alter_table("traffic_source_shares", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_traffic_source_shares_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "core_logs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("core_pathname_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("elapsed_time", sa.Float(), nullable=False),
        sa.Column("traffic_user_id", sa.String(length=255), nullable=True),
        sa.Column("request_id", sa.String(length=36), nullable=True),
        sa.Column("response_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["core_pathname_id"],
            ["core_pathnames.id"],
            name=op.f("fk_core_logs_core_pathname_id_core_pathnames"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_core_logs_request_id_requests"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["responses.id"],
            name=op.f("fk_core_logs_response_id_responses"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_core_logs_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_logs")),
        sa.UniqueConstraint("request_id", name=op.f("uq_core_logs_request_id")),
        sa.UniqueConstraint("response_id", name=op.f("uq_core_logs_response_id")),
    )
    with op.batch_alter_table("core_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_core_logs_core_pathname_id_created_at"),
            ["core_pathname_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_core_logs_traffic_source_id_created_at"),
            ["traffic_source_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "pathnames",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("domain_id", sa.String(length=36), nullable=False),
        sa.Column("value", sa.String(length=2048), nullable=False),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_pathnames_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_pathnames_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pathnames")),
        sa.UniqueConstraint("domain_id", "value", name=op.f("uq_pathnames_domain_id_value")),
    )
    with op.batch_alter_table("pathnames", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pathnames_traffic_source_id"), ["traffic_source_id"], unique=False
        )

    op.create_table(
        "http_traffic",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("traffic_source_id", sa.String(length=36), nullable=False),
        sa.Column("domain_id", sa.String(length=36), nullable=False),
        sa.Column("pathname_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("elapsed_time", sa.Float(), nullable=False),
        sa.Column("traffic_user_id", sa.String(length=255), nullable=True),
        sa.Column("request_id", sa.String(length=36), nullable=True),
        sa.Column("response_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", logharbor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_http_traffic_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pathname_id"],
            ["pathnames.id"],
            name=op.f("fk_http_traffic_pathname_id_pathnames"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_http_traffic_request_id_requests"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["responses.id"],
            name=op.f("fk_http_traffic_response_id_responses"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["traffic_source_id"],
            ["traffic_sources.id"],
            name=op.f("fk_http_traffic_traffic_source_id_traffic_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_http_traffic")),
        sa.UniqueConstraint("request_id", name=op.f("uq_http_traffic_request_id")),
        sa.UniqueConstraint("response_id", name=op.f("uq_http_traffic_response_id")),
    )
    with op.batch_alter_table("http_traffic", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_http_traffic_domain_id_created_at"),
            ["domain_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_http_traffic_pathname_id_created_at"),
            ["pathname_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_http_traffic_traffic_source_id_created_at"),
            ["traffic_source_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_http_traffic_traffic_source_id_level_created_at"),
            ["traffic_source_id", "level", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_http_traffic_traffic_source_id_status_created_at"),
            ["traffic_source_id", "status", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("http_traffic", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_http_traffic_traffic_source_id_status_created_at"))
        batch_op.drop_index(batch_op.f("ix_http_traffic_traffic_source_id_level_created_at"))
        batch_op.drop_index(batch_op.f("ix_http_traffic_traffic_source_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_http_traffic_pathname_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_http_traffic_domain_id_created_at"))

    op.drop_table("http_traffic")
    with op.batch_alter_table("pathnames", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pathnames_traffic_source_id"))

    op.drop_table("pathnames")
    with op.batch_alter_table("core_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_core_logs_traffic_source_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_core_logs_core_pathname_id_created_at"))

    op.drop_table("core_logs")
    with op.batch_alter_table("traffic_source_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_traffic_source_shares_user_id"))

    op.drop_table("traffic_source_shares")
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_responses_traffic_source_id"))
        batch_op.drop_index(batch_op.f("ix_responses_owner_user_id"))

    op.drop_table("responses")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requests_traffic_source_id"))
        batch_op.drop_index(batch_op.f("ix_requests_owner_user_id"))

    op.drop_table("requests")
    op.drop_table("prompt_versions")
    with op.batch_alter_table("prompt_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prompt_logs_prompt_id_created_at"))

    op.drop_table("prompt_logs")
    with op.batch_alter_table("ingest_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_keys_traffic_source_id"))

    op.drop_table("ingest_keys")
    op.drop_table("domains")
    op.drop_table("core_pathnames")
    with op.batch_alter_table("traffic_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_traffic_sources_user_id_created_at"))

    op.drop_table("traffic_sources")
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prompts_owner_id_created_at"))

    op.drop_table("prompts")
    op.drop_table("users")
