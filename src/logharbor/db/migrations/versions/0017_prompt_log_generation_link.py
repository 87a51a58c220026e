"""prompt logs name their LLM call without a foreign key

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04

With ``LOGHARBOR_EVENTS_URL`` set, LLM calls live on ClickHouse, where no foreign key can
reach: ``prompt_logs.generation_id`` becomes a plain column (kept, with every value), indexed
for the details event that fills a log's output by its call. A log whose call is gone (pruned,
or its source deleted) reads as one without a call, on either store (``prompts.queries``).
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite drops a constraint by copying the table, rows included.
    with op.batch_alter_table("prompt_logs") as batch:
        batch.drop_constraint("fk_prompt_logs_generation_id_generations", type_="foreignkey")
        batch.create_index("ix_prompt_logs_generation_id", ["generation_id"])


def downgrade() -> None:
    # A link to a call that is not in this database any more would fail the constraint.
    op.execute(
        "UPDATE prompt_logs SET generation_id = NULL WHERE generation_id IS NOT NULL "
        "AND generation_id NOT IN (SELECT id FROM generations)"
    )
    with op.batch_alter_table("prompt_logs") as batch:
        batch.drop_index("ix_prompt_logs_generation_id")
        batch.create_foreign_key(
            "fk_prompt_logs_generation_id_generations",
            "generations",
            ["generation_id"],
            ["id"],
            ondelete="SET NULL",
        )
