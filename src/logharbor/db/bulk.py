"""Many-row inserts on the driver, with values the column types converted.

``conn.execute(insert(table), rows)`` costs SQLAlchemy's generic per-row parameter processing,
which for the ingest hot path weighed more than SQLite's own work. ``BulkInsert`` keeps the
columns' own bind processors (timestamps, JSON), so the stored values are exactly what
``conn.execute(insert(table), rows)`` would have stored, and hands the driver plain tuples:
SQLite gets one ``executemany`` of the statement SQLAlchemy compiled; PostgreSQL gets ``COPY``,
its fastest way in (psycopg adapts each value as it would a query parameter).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError


def upsertable_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """``INSERT`` that supports ``ON CONFLICT``: the one place where the two dialects differ."""
    match dialect:
        case "postgresql":
            return postgresql.insert(table)
        case "sqlite":
            return sqlite.insert(table)
        case _:
            raise NotImplementedError(dialect)


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    copy: bool
    # Parameters by name (psycopg's pyformat) rather than by position.
    named: bool
    # (column key, converter or None), in the order the statement binds them.
    columns: tuple[tuple[str, Callable[[Any], Any] | None], ...]
    # Where each of those is in the BulkInsert's ``columns``.
    positions: tuple[int, ...]


class BulkInsert:
    """``upsert(dialect_name)``, when given, builds the statement to run instead of a plain
    insert (an ``INSERT ... ON CONFLICT``, say); it is executed as a statement, never by COPY."""

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        upsert: Callable[[str], Insert] | None = None,
    ) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.upsert = upsert
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            copy = dialect.name == "postgresql" and self.upsert is None
            order: Sequence[str]
            if copy:
                names = ", ".join(dialect.identifier_preparer.quote(key) for key in self.columns)
                table = dialect.identifier_preparer.format_table(self.table)
                sql, order = f"COPY {table} ({names}) FROM STDIN", list(self.columns)
            else:
                statement = insert(self.table) if self.upsert is None else self.upsert(dialect.name)
                compiled = statement.compile(dialect=dialect, column_keys=list(self.columns))
                sql = compiled.string
                order = list(compiled.positiontup or ()) if compiled.positional else self.columns
            if sorted(order) != sorted(self.columns):
                raise ValueError(f"{sql!r} binds {order}, not {self.columns}")
            found = _Compiled(
                sql=sql,
                copy=copy,
                named=not copy and not compiled.positional,
                columns=tuple(
                    (key, self.table.c[key].type.dialect_impl(dialect).bind_processor(dialect))
                    for key in order
                ),
                positions=tuple(self.columns.index(key) for key in order),
            )
            self._by_dialect[dialect.name] = found
        return found

    def __call__(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        self.execute(conn, self.parameters(conn.dialect, rows))

    def execute(self, conn: Connection, params: list[Any]) -> None:
        """Insert rows already converted by ``parameters`` for this connection's dialect.

        Straight on the driver's cursor, inside the transaction ``conn`` has open: for the
        handful of rows of one group commit, SQLAlchemy's execution context (events, result
        setup) cost as much as the insert itself. Errors are raised as SQLAlchemy would have
        raised them (IntegrityError for a foreign key...), so that callers and the writer's
        retry rules see the same exceptions either way.
        """
        if not params:
            return
        compiled = self._compiled(conn.dialect)
        driver = conn.connection.driver_connection
        dbapi_error = conn.dialect.dbapi.Error  # type: ignore[union-attr]
        try:
            cursor = driver.cursor()  # type: ignore[union-attr]
            try:
                if compiled.copy:
                    with cursor.copy(compiled.sql) as copy:
                        for row in params:
                            copy.write_row(row)
                elif compiled.named:
                    keys = [key for key, _ in compiled.columns]
                    cursor.executemany(
                        compiled.sql, [dict(zip(keys, row, strict=True)) for row in params]
                    )
                else:
                    cursor.executemany(compiled.sql, params)
            finally:
                cursor.close()
        except dbapi_error as exc:
            raise DBAPIError.instance(compiled.sql, None, exc, dbapi_error) from exc

    def parameters(self, dialect: Dialect, rows: Sequence[dict[str, Any]]) -> list[Any]:
        """The driver's parameters for ``rows``: work that needs no connection, so a writer can
        do it before it takes the database's write lock."""
        if len(self.columns) == 1:
            key = self.columns[0]
            return self.tuple_parameters(dialect, [(row[key],) for row in rows])
        take = itemgetter(*self.columns)
        return self.tuple_parameters(dialect, [take(row) for row in rows])

    def tuple_parameters(self, dialect: Dialect, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """``parameters`` for rows given as tuples of values in ``columns`` order (cheaper to
        build than dicts when there are many)."""
        if not rows:
            return []
        compiled = self._compiled(dialect)
        # Column by column: each converter runs over one list, and zip builds the row tuples.
        values: list[Any] = list(zip(*rows, strict=True))
        for index, convert in enumerate(convert for _, convert in compiled.columns):
            if convert is None:
                continue
            column = values[compiled.positions[index]]
            if type(column[0]) is datetime:
                # Rows of one call mostly share their timestamps: convert each distinct one once.
                memo = {stamp: convert(stamp) for stamp in set(column)}
                values[compiled.positions[index]] = [memo[stamp] for stamp in column]
            elif column.count(None) == len(column) and convert(None) is None:
                # A column left empty in every row (a record's exception, mostly): nothing to
                # convert, and None stays NULL.
                continue
            else:
                values[compiled.positions[index]] = list(map(convert, column))
        if compiled.positions != tuple(range(len(self.columns))):
            values = [values[position] for position in compiled.positions]
        return list(zip(*values, strict=True))
