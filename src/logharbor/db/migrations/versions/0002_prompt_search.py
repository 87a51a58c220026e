"""full-text search over prompts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

``prompt_search`` holds each prompt's case- and accent-folded text (logharbor/prompts/search.py).
SQLite indexes it with an FTS5 trigram table kept in step by triggers; PostgreSQL with pg_trgm GIN
indexes. pg_trgm is a trusted extension (PostgreSQL 13+), so a database owner may create it; where
that is refused the indexes are skipped with a warning and search still works, by scanning the
owner's rows.
"""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

log = logging.getLogger("logharbor")

_COLUMNS = "title, body, grams"
_NEW = "new.title, new.body, new.grams"
_OLD = "old.title, old.body, old.grams"
_SQLITE_FTS = [
    # External content: the FTS table stores only the index; text is read from prompt_search.
    f"CREATE VIRTUAL TABLE prompt_search_fts USING fts5({_COLUMNS}, "
    "content='prompt_search', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER prompt_search_fts_ai AFTER INSERT ON prompt_search BEGIN "
    f"INSERT INTO prompt_search_fts(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END",
    "CREATE TRIGGER prompt_search_fts_ad AFTER DELETE ON prompt_search BEGIN "
    f"INSERT INTO prompt_search_fts(prompt_search_fts, rowid, {_COLUMNS}) "
    f"VALUES ('delete', old.id, {_OLD}); END",
    "CREATE TRIGGER prompt_search_fts_au AFTER UPDATE ON prompt_search BEGIN "
    f"INSERT INTO prompt_search_fts(prompt_search_fts, rowid, {_COLUMNS}) "
    f"VALUES ('delete', old.id, {_OLD}); "
    f"INSERT INTO prompt_search_fts(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END",
]


def upgrade() -> None:
    op.create_table(
        "prompt_search",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("prompt_id", sa.String(length=36), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("grams", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_prompt_search_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f("fk_prompt_search_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_search")),
        sa.UniqueConstraint("prompt_id", name=op.f("uq_prompt_search_prompt_id")),
    )
    with op.batch_alter_table("prompt_search", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prompt_search_owner_id"), ["owner_id"], unique=False)

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in _SQLITE_FTS:
            op.execute(statement)
    elif bind.dialect.name == "postgresql":
        _create_trigram_indexes(bind)
    _backfill(bind)


def _create_trigram_indexes(bind: sa.Connection) -> None:
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as exc:
        log.warning(
            "pg_trgm is not available (%s): prompt search will scan each owner's prompts "
            "instead of using an index. To add the indexes later, run `CREATE EXTENSION pg_trgm` "
            "as a privileged user, then `CREATE INDEX ix_prompt_search_trgm_title ON "
            "prompt_search USING gin (title gin_trgm_ops)` and the same for `body` and `grams`.",
            exc.orig,
        )
        return
    for col in ("title", "body", "grams"):
        op.execute(
            f"CREATE INDEX ix_prompt_search_trgm_{col} ON prompt_search "
            f"USING gin ({col} gin_trgm_ops)"
        )


def _backfill(bind: sa.Connection) -> None:
    """Index prompts that existed before this revision."""
    # The folding rule lives with the search code; a later change to it comes with a reindex.
    from logharbor.prompts.search import document

    rows = bind.execute(sa.text("SELECT id, owner_id, title, content, tags FROM prompts"))
    insert = sa.text(
        "INSERT INTO prompt_search (prompt_id, owner_id, title, body, grams) "
        "VALUES (:prompt_id, :owner_id, :title, :body, :grams)"
    )
    for chunk in rows.mappings().partitions(1000):
        batch = []
        for row in chunk:
            tags = json.loads(row["tags"]) if isinstance(row["tags"], str) else row["tags"]
            batch.append(
                {
                    "prompt_id": row["id"],
                    "owner_id": row["owner_id"],
                    **document(row["title"], row["content"], tags or []),
                }
            )
        bind.execute(insert, batch)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS prompt_search_fts_{name}")
        op.execute("DROP TABLE IF EXISTS prompt_search_fts")
    elif bind.dialect.name == "postgresql":
        for col in ("title", "body", "grams"):
            op.execute(f"DROP INDEX IF EXISTS ix_prompt_search_trgm_{col}")
    with op.batch_alter_table("prompt_search", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prompt_search_owner_id"))

    op.drop_table("prompt_search")
