"""BulkInsert stores exactly what SQLAlchemy's own insert stores, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import cast, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import Text

from logharbor.common.ids import new_id
from logharbor.db.bulk import BulkInsert
from logharbor.db.engine import Database, make_engine
from logharbor.db.tables import requests

COLUMNS = ("id", "headers", "body", "body_preview", "body_size", "body_truncated")
COLUMNS += ("query_params", "created_at")


def _row(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": new_id(),
        "headers": {"accept": "*/*", "x-n": [1, 2.5, None, "é", {"deep": True}], "big": 2**70},
        "body": '{"a": 1}',
        "body_preview": "é preview",
        "body_size": 8,
        "body_truncated": False,
        "query_params": None,  # stored as JSON null by both paths
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    }
    row.update(changes)
    return row


def test_bulk_rows_equal_sqlalchemy_rows(database_url: str) -> None:
    db = Database(make_engine(database_url))
    bulk = BulkInsert(requests, COLUMNS)
    ours = [_row(), _row(query_params={"page": "1"}, body=None, body_truncated=True)]
    theirs = [{**row, "id": new_id()} for row in ours]
    with db.write() as conn:
        bulk(conn, ours)
        conn.execute(insert(requests), theirs)
    stored_columns = [cast(requests.c[name], Text) for name in COLUMNS if name != "id"]
    with db.read() as conn:
        for mine, reference in zip(ours, theirs, strict=True):
            rows = [
                conn.execute(select(*stored_columns).where(requests.c.id == row["id"])).one()
                for row in (mine, reference)
            ]
            assert rows[0] == rows[1]
            typed = conn.execute(select(requests).where(requests.c.id == mine["id"])).one()
            assert typed.headers == mine["headers"] and typed.created_at == mine["created_at"]
    db.dispose()


def test_a_refused_row_raises_sqlalchemys_integrity_error(database_url: str) -> None:
    db = Database(make_engine(database_url))
    bulk = BulkInsert(requests, (*COLUMNS, "traffic_source_id"))
    with pytest.raises(IntegrityError), db.write() as conn:
        bulk(conn, [_row(traffic_source_id=new_id())])  # no such source: a foreign key fails
    with db.read() as conn:
        assert conn.execute(select(requests.c.id)).first() is None
    db.dispose()
