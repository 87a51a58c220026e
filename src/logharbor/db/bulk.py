"""Many-row inserts on the driver: one executemany with values the column types converted.

``conn.execute(insert(table), rows)`` costs SQLAlchemy's generic per-row parameter processing,
which for the ingest hot path weighed more than SQLite's own work. ``BulkInsert`` compiles the
statement once per dialect (so PostgreSQL keeps SQLAlchemy's bind casts, e.g. ``::JSONB``), keeps
the columns' own bind processors (timestamps, JSON) and hands the driver plain tuples or dicts:
the stored values are exactly what ``conn.execute(insert(table), rows)`` would have stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Table, insert


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    positional: bool
    # (column key, converter or None), in the order the statement binds them.
    columns: tuple[tuple[str, Callable[[Any], Any] | None], ...]


class BulkInsert:
    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            compiled = insert(self.table).compile(dialect=dialect, column_keys=list(self.columns))
            order = list(compiled.positiontup or ()) if compiled.positional else self.columns
            found = _Compiled(
                sql=compiled.string,
                positional=compiled.positional,
                columns=tuple(
                    (key, self.table.c[key].type.dialect_impl(dialect).bind_processor(dialect))
                    for key in order
                ),
            )
            self._by_dialect[dialect.name] = found
        return found

    def __call__(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        compiled = self._compiled(conn.dialect)
        columns = compiled.columns
        params: list[Any]
        if compiled.positional:
            params = [
                tuple(
                    row[key] if convert is None else convert(row[key]) for key, convert in columns
                )
                for row in rows
            ]
        else:
            params = [
                {
                    key: row[key] if convert is None else convert(row[key])
                    for key, convert in columns
                }
                for row in rows
            ]
        conn.exec_driver_sql(compiled.sql, params)
