"""Databases, settings and users for tests: what conftest's fixtures are made of.

Plain functions, so that a module-scoped fixture (see ``BACKEND_SCOPE`` in conftest) can build
the same world the function-scoped fixtures do.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from helpers import AUser
from logharbor.settings import Settings
from postgres import Cluster

BACKENDS = ("sqlite", "postgresql")
# Metadata on SQLite, traffic events on ClickHouse's engine in this process (issue 16). Asked for
# by name (``--db chdb``) until every storage test passes on it.
EVENT_BACKENDS = ("chdb",)
TEST_SECRET = "test-secret-that-is-long-enough-for-hs256"
TEMPLATE_DB = "logharbor_template"
_counter = itertools.count()


def chosen_backends(config: pytest.Config) -> tuple[str, ...]:
    """The backends ``--db`` asks for (all by default)."""
    chosen = str(config.getoption("--db"))
    return BACKENDS if chosen == "all" else (chosen,)


def events_url_for(backend: str, chdb_directory: Path | None) -> str:
    """A fresh events database for ``backend``, or "" when events stay in the SQL database."""
    if backend != "chdb":
        return ""
    assert chdb_directory is not None
    return f"chdb:///{chdb_directory}/events{next(_counter)}"


@contextmanager
def fresh_database(backend: str, request: pytest.FixtureRequest, directory: Path) -> Iterator[str]:
    """A fresh, migrated, empty database on ``backend``; yields its URL, drops it after."""
    if backend in ("sqlite", *EVENT_BACKENDS):
        template: Path = request.getfixturevalue("sqlite_template")
        target = directory / "logharbor.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = f"t{next(_counter)}_{abs(hash(request.node.nodeid)) % 10**8}"
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    try:
        yield cluster.url(name)
    finally:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def settings_for(database_url: str, directory: Path, events_url: str = "") -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=directory / "data",
        secret_key=TEST_SECRET,
        events_url=events_url,
    )


def sign_up(client: TestClient, name: str | None = None) -> AUser:
    """Sign up and log in a user through the API."""
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
