"""The migrations build exactly the tables the code declares, and walk down and up again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from logharbor.db import migrate
from logharbor.db.engine import make_engine
from logharbor.db.tables import metadata


def test_migrations_match_tables_and_are_reversible(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": migrate.include_name}
            )
            differences = compare_metadata(context, metadata)
        assert differences == []

        migrate.downgrade(engine, "base")
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()
