"""SQLAlchemy Core statements rendered as ClickHouse SQL, and their rows read back typed.

The event tables are declared as SQLAlchemy ``Table`` objects (``db/events_tables.py``), so that
the filters, sorts and pages the SQL stores build are built the same way for ClickHouse. This
module compiles such a statement with every value bound on the client, in the subset of SQL that
both Debian's 18.16 and the current engine accept, and turns the ``JSONEachRow`` answer back into
the Python values the SQL stores return (datetimes, parsed JSON, booleans).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, Table, Text, TypeDecorator
from sqlalchemy.engine import default
from sqlalchemy.sql import compiler
from sqlalchemy.sql.expression import ClauseElement, Select

from logharbor.db.clickhouse import EventsClient, epoch_ms, from_epoch_ms, json_row, literal


class EpochMs(TypeDecorator[datetime]):
    """A time stored as Int64 Unix milliseconds, compared and returned as a datetime."""

    impl = BigInteger
    cache_ok = True

    def process_literal_param(self, value: Any, dialect: Any) -> Any:
        return epoch_ms(value) if isinstance(value, datetime) else value

    process_bind_param = process_literal_param

    def from_row(self, value: Any) -> datetime | None:
        return None if value is None else from_epoch_ms(int(value))


class JsonText(TypeDecorator[Any]):
    """A JSON document kept as compact text in a String column."""

    impl = Text
    cache_ok = True

    def from_row(self, value: Any) -> Any:
        return None if value is None else json.loads(value)


class Flag(TypeDecorator[bool]):
    """A boolean kept as UInt8 (18.16 has no Bool)."""

    impl = Integer
    cache_ok = True

    def process_literal_param(self, value: Any, dialect: Any) -> Any:
        return None if value is None else int(bool(value))

    process_bind_param = process_literal_param

    def from_row(self, value: Any) -> bool | None:
        return None if value is None else bool(value)


class _Compiler(compiler.SQLCompiler):
    def render_literal_value(self, value: Any, type_: Any) -> str:
        return literal(value)

    def visit_like_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        # ClickHouse's LIKE escapes with a backslash already and has no ESCAPE clause.
        kw.pop("escape", None)
        return f"{binary.left._compiler_dispatch(self, **kw)} LIKE " + (
            f"{binary.right._compiler_dispatch(self, **kw)}"
        )

    def visit_not_like_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        kw.pop("escape", None)
        return f"{binary.left._compiler_dispatch(self, **kw)} NOT LIKE " + (
            f"{binary.right._compiler_dispatch(self, **kw)}"
        )

    def visit_true(self, expr: Any, **kw: Any) -> str:
        return "1"

    def visit_false(self, expr: Any, **kw: Any) -> str:
        return "0"


class ClickHouseDialect(default.DefaultDialect):
    name = "clickhouse"
    statement_compiler = _Compiler
    supports_native_boolean = False


DIALECT = ClickHouseDialect(paramstyle="named")


def render(statement: ClauseElement) -> str:
    return str(statement.compile(dialect=DIALECT, compile_kwargs={"literal_binds": True}))


def fetch(client: EventsClient, statement: Select[Any]) -> list[dict[str, Any]]:
    """Rows of ``statement``, with each column's value as the SQL stores would return it."""
    rows = client.query(render(statement))
    return _read(statement.selected_columns, rows)


def from_events_row(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """A ClickHouse row of ``table`` (as staged or inserted) as ``fetch`` returns it."""
    return _read(table.c, [dict(row)])[0]


def _read(columns: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    readers = {
        column.key: column.type.from_row for column in columns if hasattr(column.type, "from_row")
    }
    if readers:
        for row in rows:
            for key, read in readers.items():
                if key in row:
                    row[key] = read(row[key])
    return rows


def to_events_row(table: Table, row: Mapping[Any, Any]) -> dict[str, Any]:
    """A row as the SQL stores return it (``row``, keyed like ``table``'s columns) as the
    JSONEachRow object ClickHouse takes for ``table``: the inverse of ``fetch``."""
    return {column.key: to_events_value(column, row.get(column.key)) for column in table.c}


def to_events_value(column: Any, value: Any) -> Any:
    """One column's value (as the SQL stores return it) as ClickHouse takes it."""
    if isinstance(column.type, EpochMs) and isinstance(value, datetime):
        value = epoch_ms(value)
    elif isinstance(column.type, JsonText) and value is not None:
        value = json_row(value)
    elif isinstance(column.type, Flag) and value is not None:
        value = int(bool(value))
    if value is None and not column.nullable:
        value = 0
    return value


def scalar(client: EventsClient, statement: Select[Any]) -> Any:
    rows = client.query(render(statement))
    return next(iter(rows[0].values())) if rows else None
