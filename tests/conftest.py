"""Fixtures: every storage test runs on SQLite and on a real PostgreSQL started here.

``--db sqlite|postgresql|all`` picks the backends (default all). Each test gets a fresh database
copied from a template that the real migrations built once per session.
"""

from __future__ import annotations

import itertools
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from logharbor.app import create_app
from logharbor.db import migrate
from logharbor.db.engine import make_engine
from logharbor.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))

from alerts.support import Receiver
from helpers import AUser
from postgres import Cluster, start_cluster

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256"
BACKENDS = ("sqlite", "postgresql")
TEMPLATE_DB = "logharbor_template"
_counter = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", default="all", choices=[*BACKENDS, "all"], help="storage backends")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--db")
        backends = BACKENDS if chosen == "all" else (chosen,)
        metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = start_cluster()
    if cluster is None:
        message = (
            "\n\n*** PostgreSQL binaries (initdb, pg_ctl) not found: "
            "PostgreSQL tests SKIPPED. ***\n"
            "*** Install Debian's `postgresql` package to run them (CI always does). ***\n"
        )
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
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
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "logharbor.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = f"t{next(_counter)}_{abs(hash(request.node.nodeid)) % 10**8}"
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    yield cluster.url(name)
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data", secret_key=TEST_SECRET)


@pytest.fixture
def app(settings: Settings) -> Any:
    return create_app(settings)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def make_user(client: TestClient) -> Callable[..., AUser]:
    """Sign up and log in a user through the API."""

    def make(name: str | None = None) -> AUser:
        n = next(_counter)
        email = f"user{n}@example.com"
        password = "password123"
        response = client.post(
            "/auth/signup", json={"name": name or f"User {n}", "email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        login = client.post("/user/auth", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        body = login.json()
        return AUser(id=body["id"], email=email, password=password, token=body["token"])

    return make


@pytest.fixture
def user(make_user: Callable[..., AUser]) -> AUser:
    return make_user()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 that records the webhook deliveries it gets."""
    rec = Receiver().start()
    yield rec
    rec.stop()
