"""Names vulture cannot see used: read by a framework, a protocol or a string, never by our code.

Each line names one, so that ``tests/test_dead_code.py`` reports everything else unused.
"""

# ruff: noqa: B018
from logharbor import app, collector
from logharbor.collector import django
from logharbor.common import pagination
from logharbor.db import clickhouse_sql, engine, migrate
from logharbor.ingest import otlp

app.create_app_from_env  # uvicorn's factory, named by a string in serving/cli and the benches
collector.__getattr__  # module __getattr__ (PEP 562): lazy httpx wrappers
django.LogHarborMiddleware.sync_capable  # read by Django's middleware loader
django.LogHarborMiddleware.async_capable
django.LogHarborMiddleware.process_exception  # called by Django on a view's exception
pagination.PageMeta.pageLimit  # wire fields of the list envelope, filled by pydantic
pagination.PageMeta.totalItems
# SQLAlchemy's compiler calls these by name (visit_<kind>) while it renders a statement.
clickhouse_sql._Compiler.render_literal_value
clickhouse_sql._Compiler.visit_like_op_binary
clickhouse_sql._Compiler.visit_not_like_op_binary
clickhouse_sql._Compiler.visit_true
clickhouse_sql._Compiler.visit_false
clickhouse_sql._Compiler.visit_like_op_binary.operator  # parameters of SQLAlchemy's signatures
clickhouse_sql._Compiler.visit_not_like_op_binary.operator
clickhouse_sql._Compiler.visit_true.expr
clickhouse_sql._Compiler.visit_false.expr
clickhouse_sql.ClickHouseDialect.statement_compiler  # read by SQLAlchemy's Dialect
clickhouse_sql.ClickHouseDialect.supports_native_boolean
engine.Any.isolation_level  # set on sqlite3's DBAPI connection (the "connect" listener)
migrate.include_name.type_  # Alembic calls include_name(name, type_, parent_names)
migrate.include_name.parent_names
otlp.Any.map_entry  # a protobuf descriptor option, read by protobuf
