"""Alembic environment: runs on the connection that ``logharbor.db.migrate`` hands over."""

from __future__ import annotations

from alembic import context

from logharbor.db.migrate import include_name
from logharbor.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the programmatic entry point is supported
    raise RuntimeError("Run migrations with `logharbor db upgrade`.")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
