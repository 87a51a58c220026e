"""Fixtures: every storage test runs on SQLite and on a real PostgreSQL started here.

``--db sqlite|postgresql|all`` picks the backends (default all). Each test gets a fresh database
copied from a template that the real migrations built once per session. (For many cheap
cases on one world per database, see ``fixtures.database.chosen_backends`` and
test_hostile_ingest.)

Test data comes from the factories in ``fixtures/`` (users, sources, records, prompts, spans,
webhooks), registered below: one name and one type per concept, in every test folder.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from logharbor.app import create_app
from logharbor.db import events_schema, migrate
from logharbor.db.clickhouse import EventsClient
from logharbor.db.engine import Database, make_engine
from logharbor.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))

from fixtures.database import (
    BACKENDS,
    TEMPLATE_DB,
    chosen_backends,
    events_url_for,
    fresh_database,
    settings_for,
)
from fixtures.postgres import Cluster, start_cluster

pytest_plugins = [
    "fixtures.users",
    "fixtures.sources",
    "fixtures.prompts",
    "fixtures.webhooks",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", default="all", choices=[*BACKENDS, "all"], help="storage backends")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", chosen_backends(metafunc.config), indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = start_cluster()
    if cluster is None:
        pytest.fail(
            "PostgreSQL binaries (initdb, pg_ctl) not found: install Debian's `postgresql`"
            " package (CI does), or run the other backends only (--db sqlite, --db chdb).",
            pytrace=False,
        )
    try:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        engine = make_engine(cluster.url(TEMPLATE_DB))
        migrate.upgrade(engine)
        engine.dispose()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty database on the chosen backend."""
    with fresh_database(backend, request, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def chdb_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chDB's data directory: one per process, so one per test session."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def events_url(backend: str, request: pytest.FixtureRequest) -> str:
    """Where the app keeps traffic events: "" (the SQL database) except on ``chdb``."""
    directory = request.getfixturevalue("chdb_directory") if backend == "chdb" else None
    return events_url_for(backend, directory)


@pytest.fixture
def settings(database_url: str, events_url: str, tmp_path: Path) -> Settings:
    return settings_for(database_url, tmp_path, events_url)


@pytest.fixture
def app(settings: Settings) -> Any:
    return create_app(settings)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def db(client: TestClient) -> Database:
    """The database of the app under test (``client``'s)."""
    database: Database = client.app.state.db  # type: ignore[attr-defined]
    return database


@pytest.fixture
def bare_db(database_url: str, events_url: str) -> Iterator[Database]:
    """The test's database with no app running on it (so no worker races the test)."""
    events = EventsClient.from_url(events_url) if events_url else None
    if events is not None:
        events_schema.upgrade(events)
    database = Database(make_engine(database_url), events)
    yield database
    database.dispose()
    if events is not None:
        events.close()


@pytest.fixture
def rows(db: Database) -> Callable[[], dict[str, int]]:
    """Row counts of every traffic table, to prove a failed call wrote nothing."""
    from sqlalchemy import func, select

    from logharbor.db import tables

    names = (
        "domains",
        "pathnames",
        "requests",
        "responses",
        "http_traffic",
        "core_pathnames",
        "core_logs",
    )

    def count() -> dict[str, int]:
        with db.read() as conn:
            counts = {
                name: conn.execute(
                    select(func.count()).select_from(getattr(tables, name))
                ).scalar_one()
                for name in names
            }
        if db.events is not None:
            # On ClickHouse a record is one row that carries its request and response; those
            # the entity API linked also keep their standalone rows, counted above.
            on_events = {
                name: int(db.events.query(f"SELECT count() AS n FROM {name}")[0]["n"])
                for name in ("http_traffic", "core_logs")
            }
            own = db.events.query("SELECT request_id, response_id FROM http_traffic")
            with db.read() as conn:
                for kind, column in (("requests", "request_id"), ("responses", "response_id")):
                    table = getattr(tables, kind)
                    ids = [row[column] for row in own]
                    in_sql = conn.execute(
                        select(func.count()).select_from(table).where(table.c.id.in_(ids))
                    ).scalar_one()
                    counts[kind] += len(ids) - in_sql
            counts.update(on_events)
        return counts

    return count


def _clickhouse(shards: int) -> Iterator[Any]:
    """``shards`` Debian clickhouse-server nodes (2 or more form the cluster ``logharbor``)."""
    from clickhouse_servers import start_servers

    servers = start_servers(shards)
    if servers is None:
        pytest.fail(
            "clickhouse-server not found: install Debian's clickhouse-server and "
            "clickhouse-client packages (CI does) to run the ClickHouse tests."
        )
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def clickhouse_node() -> Iterator[Any]:
    """One ClickHouse node, started once per session (see tests/clickhouse_servers.py)."""
    yield from _clickhouse(1)


@pytest.fixture(scope="session")
def clickhouse_cluster() -> Iterator[Any]:
    """Two ClickHouse nodes as the 2-shard cluster ``logharbor``, started once per session."""
    yield from _clickhouse(2)
