"""The command line: migrations, user creation, and `serve` answering real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from logharbor.cli import app
from logharbor.db import migrate
from logharbor.db.engine import make_engine
from postgres import free_port

runner = CliRunner()


def _env(database_url: str, data_dir: Path) -> dict[str, str]:
    return {"LOGHARBOR_DATABASE_URL": database_url, "LOGHARBOR_DATA_DIR": str(data_dir)}


def test_user_create_and_login(database_url: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for key, value in _env(database_url, tmp_path).items():
        monkeypatch.setenv(key, value)
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert migrate.head_revision() in upgraded.output

    created = runner.invoke(
        app,
        [
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "Ops",
            "--password",
            "s3cret-pass",
        ],
    )
    assert created.exit_code == 0, created.output
    again = runner.invoke(
        app,
        [
            "user",
            "create",
            "--email",
            "OPS@example.com",
            "--name",
            "Ops",
            "--password",
            "s3cret-pass",
        ],
    )
    assert again.exit_code == 1
    assert "already exists" in again.output
    short = runner.invoke(
        app, ["user", "create", "--email", "x@example.com", "--name", "X", "--password", "short"]
    )
    assert short.exit_code != 0


def test_db_upgrade_on_an_empty_database(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("LOGHARBOR_DATABASE_URL", url)
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = make_engine(url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


@pytest.mark.slow
def test_serve_answers_health_docs_signup_and_login(database_url: str, tmp_path: Path) -> None:
    """What the README's start command gives a new user, over a real socket."""
    port = free_port()
    env = {**os.environ, **_env(database_url, tmp_path / "data")}
    env.pop("LOGHARBOR_SECRET_KEY", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "logharbor", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        assert httpx.get(f"{base}/health").json()["database"] == "ok"
        assert "swagger" in httpx.get(f"{base}/docs").text.lower()
        signup = httpx.post(
            f"{base}/auth/signup",
            json={"name": "New", "email": "new@example.com", "password": "password123"},
        )
        assert signup.status_code == 201
        login = httpx.post(
            f"{base}/auth/login", json={"email": "new@example.com", "password": "password123"}
        )
        assert login.status_code == 200 and login.json()["token"]
        # The secret was generated once and kept in the data dir.
        assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o077 == 0
    finally:
        process.terminate()
        process.wait(10)
