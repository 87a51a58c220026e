"""The command line: migrations, user creation, and `serve` answering real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from fixtures.network import free_port
from fixtures.records import ago, count_records, insert_records
from fixtures.serve import start_serve
from fixtures.sources import insert_source
from fixtures.users import insert_user
from logharbor.cli import app
from logharbor.db import migrate
from logharbor.db.engine import Database, make_engine
from logharbor.settings import Settings

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
def test_prune_applies_retention_now(
    settings: Settings,
    bare_db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source_id = insert_source(bare_db, insert_user(bare_db).id, retention_days=1).id
    insert_records(bare_db, source_id, 2, at=ago(days=2))
    for key, value in _env(settings.resolved_database_url(), tmp_path / "cli").items():
        monkeypatch.setenv(key, value)
    result = runner.invoke(app, ["prune"])
    assert result.exit_code == 0, result.output
    assert "2 traffic records" in result.output
    assert count_records(bare_db, source_id) == 0


def test_serve_answers_health_docs_signup_and_login(database_url: str, tmp_path: Path) -> None:
    """What the README's start command gives a new user, over a real socket."""
    port = free_port()
    env = {**os.environ, **_env(database_url, tmp_path / "data")}
    env.pop("LOGHARBOR_SECRET_KEY", None)
    log = tmp_path / "serve.log"
    process = start_serve(port, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log.read_text()
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


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _wait_for(condition, what: str, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=10).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_refuses_several_workers_on_an_in_process_events_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOGHARBOR_DATABASE_URL", f"sqlite:///{tmp_path / 'meta.db'}")
    monkeypatch.setenv("LOGHARBOR_EVENTS_URL", f"chdb:///{tmp_path}/events")
    result = runner.invoke(app, ["serve", "--workers", "2", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "--workers 1" in result.output
    assert not (tmp_path / "meta.db").exists()  # refused before anything was touched


@pytest.mark.slow
def test_serve_with_workers_restarts_a_dead_one_and_stops_them_all(
    database_url: str, tmp_path: Path
) -> None:
    """Several workers, each on its own SO_REUSEPORT socket: all serve; one killed is replaced;
    SIGTERM stops every one of them; and a port already taken is refused, not shared."""
    port = free_port()
    env = {**os.environ, **_env(database_url, tmp_path / "data")}
    process = subprocess.Popen(
        [sys.executable, "-m", "logharbor", "serve", "--port", str(port), "--workers", "2"],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Counted by what they run: the supervisor has other children too (multiprocessing's
        # resource tracker), which made a bare count of children pass before both had started.
        _wait_for(lambda: _healthy(base) and len(_workers(process.pid)) == 2, "no two workers")
        # Many fresh connections: each is accepted by some worker and answered.
        for _ in range(20):
            with httpx.Client() as fresh:
                assert fresh.get(f"{base}/health").status_code == 200
        workers = _workers(process.pid)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        _wait_for(
            lambda: len(_workers(process.pid) - {victim}) == 2,
            "the killed worker was not replaced",
        )
        _wait_for(lambda: _healthy(base), "not serving after the restart")
        taken = subprocess.run(
            [
                sys.executable,
                "-m",
                "logharbor",
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
                "--no-migrate",
            ],
            env=env,
            capture_output=True,
            timeout=300,  # a deadline for a hung refusal, not a speed limit
        )
        assert taken.returncode != 0  # the port is in use: refused, not shared
        assert _healthy(base)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert process.returncode == 0 or process.returncode == -signal.SIGTERM
    remaining = {pid for pid in workers if Path(f"/proc/{pid}").exists()}
    assert not remaining - {victim}


def _workers(supervisor: int) -> set[int]:
    return {pid for pid in _children(supervisor) if _is_worker(pid)}


def _is_worker(pid: int) -> bool:
    try:
        return "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False
