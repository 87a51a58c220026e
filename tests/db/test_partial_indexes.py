"""Indexes of mostly-empty columns leave their NULL rows out, and queries by value still use them.

``compare_metadata`` (test_migrations) does not compare an index's WHERE clause, so the
migrated databases are inspected here.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

from logharbor.db.engine import make_engine

PARTIAL = [
    ("ix_requests_owner_user_id", "requests", "owner_user_id"),
    ("ix_responses_owner_user_id", "responses", "owner_user_id"),
    ("ix_http_traffic_route_pathname_id_created_at", "http_traffic", "route_pathname_id"),
]


def _definition(conn: Connection, index: str) -> str:
    if conn.dialect.name == "sqlite":
        sql = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    else:
        sql = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    found = conn.execute(text(sql), {"name": index}).scalar()
    assert found is not None, f"{index} is missing"
    return str(found)


def _plan(conn: Connection, table: str, column: str) -> str:
    query = f"SELECT id FROM {table} WHERE {column} = :value"
    if conn.dialect.name == "sqlite":
        rows = conn.execute(text("EXPLAIN QUERY PLAN " + query), {"value": "x"}).all()
        return " ".join(str(row[-1]) for row in rows)
    # An empty table is read whole whatever its indexes: ask for the index path explicitly.
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    return " ".join(row[0] for row in conn.execute(text("EXPLAIN " + query), {"value": "x"}))


@pytest.mark.parametrize(("index", "table", "column"), PARTIAL)
def test_index_leaves_out_null_rows_and_serves_lookups(
    database_url: str, index: str, table: str, column: str
) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn, conn.begin():
            definition = _definition(conn, index)
            assert f"WHERE ({column} IS NOT NULL)" in definition.replace(
                f"WHERE {column} IS NOT NULL", f"WHERE ({column} IS NOT NULL)"
            ), definition
            assert index in _plan(conn, table, column)
    finally:
        engine.dispose()
