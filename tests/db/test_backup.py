"""`logharbor backup` / `restore`: consistent copies of a serving SQLite store, under load."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from fixtures.network import free_port
from logharbor.cli import app
from logharbor.db import backup, migrate
from logharbor.db.engine import make_engine

runner = CliRunner()


def _use(monkeypatch: pytest.MonkeyPatch, database_url: str, data_dir: Path) -> None:
    monkeypatch.setenv("LOGHARBOR_DATABASE_URL", database_url)
    monkeypatch.setenv("LOGHARBOR_DATA_DIR", str(data_dir))


def _traffic_ids(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM http_traffic")}
    finally:
        conn.close()


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _revision(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])
    finally:
        conn.close()


class Loader:
    """Ingests batches into a real server until stopped; remembers every acknowledged id."""

    def __init__(self, base: str, token: str, source: str) -> None:
        self.base, self.token, self.source = base, token, source
        self.acked: list[str] = []
        self.lock = threading.Lock()
        self.batches = threading.Condition(self.lock)
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        body = "x" * 2000  # some weight per record, so the database spans many backup steps
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                ids = [str(uuid.uuid4()) for _ in range(50)]
                records = [
                    {
                        "id": record_id,
                        "domainUrl": "https://shop.io",
                        "pathnameUrl": f"/items/{n}",
                        "status": 500 if n % 7 == 0 else 200,
                        "method": "GET",
                        "elapsedTime": 3.5,
                        "requestHeaders": {},
                        "responseHeaders": {},
                        "responseBody": body,
                    }
                    for n, record_id in enumerate(ids)
                ]
                answer = client.post(
                    f"/http-traffic-record/{self.source}/batch",
                    json=records,
                    headers={"Authorization": f"Bearer {self.token}"},
                )
                if answer.status_code != 201 or answer.json()["stored"] != len(ids):
                    self.errors.append(answer.text)
                    return
                with self.batches:
                    self.acked.extend(ids)
                    self.batches.notify_all()

    def wait_for(self, count: int, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        with self.batches:
            while len(self.acked) < count:
                assert not self.errors, self.errors
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"only {len(self.acked)} records acknowledged"
                self.batches.wait(remaining)

    def snapshot(self) -> set[str]:
        with self.lock:
            return set(self.acked)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """`logharbor serve --workers 2` on a SQLite store in tmp_path."""
    database = tmp_path / "data" / "logharbor.db"
    port = free_port()
    env = {
        **os.environ,
        "LOGHARBOR_DATABASE_URL": f"sqlite:///{database}",
        "LOGHARBOR_DATA_DIR": str(tmp_path / "data"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "logharbor", "serve", "--port", str(port), "--workers", "2"],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None, "server exited"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)
    try:
        yield base, database, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


def _user_and_source(base: str) -> tuple[str, str]:
    account = {"name": "Ops", "email": "ops@example.com", "password": "password123"}
    assert httpx.post(f"{base}/auth/signup", json=account).status_code == 201
    token = httpx.post(f"{base}/auth/login", json=account).json()["token"]
    source = httpx.post(
        f"{base}/traffic-source",
        json={"name": "Shop", "trafficDomain": "https://shop.io"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert source.status_code == 201, source.text
    return token, source.json()["id"]


@pytest.mark.slow
def test_backup_under_write_load_keeps_every_acknowledged_record(
    server: tuple[str, Path, subprocess.Popen[bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, database, process = server
    loader = Loader(base, *_user_and_source(base))
    loader.thread.start()
    loader.wait_for(3000)  # ~6 MB: the copy takes many steps

    target = tmp_path / "backups" / "lh.db"
    steps: list[tuple[int, int]] = []
    acked_before = loader.snapshot()

    def on_step(done: int, total: int) -> None:
        if not steps:
            # Hold the copy until the server has committed more: writes go on during the backup.
            loader.wait_for(len(acked_before) + 100)
        steps.append((done, total))

    report = backup.backup(database, target, progress=on_step, pages_per_step=64)
    acked_during = loader.snapshot() - acked_before
    assert len(steps) > 5 and steps[-1][0] == steps[-1][1] == report.pages
    assert acked_during, "no write was acknowledged while the backup ran"
    assert _integrity(target) == "ok"
    in_backup = _traffic_ids(target)
    assert acked_before <= in_backup
    assert report.revision == migrate.head_revision()
    assert not target.with_name("lh.db.partial").exists()
    assert not Path(f"{target}-wal").exists()  # one self-contained file

    # Restore refuses while the server (any of its workers) uses the database.
    _use(monkeypatch, f"sqlite:///{database}", tmp_path / "data")
    refused = runner.invoke(app, ["restore", str(target)])
    assert refused.exit_code == 1
    assert "server is running" in refused.output

    loader.stop.set()
    loader.thread.join(60)
    assert not loader.errors, loader.errors
    process.send_signal(signal.SIGTERM)
    process.wait(60)
    everything = loader.snapshot()
    assert everything - in_backup  # the database now holds records the backup does not

    restored = runner.invoke(app, ["restore", str(target)])
    assert restored.exit_code == 0, restored.output
    assert _traffic_ids(database) == in_backup
    assert _integrity(database) == "ok"
    kept = [p for p in database.parent.iterdir() if ".before-restore-" in p.name]
    assert len(kept) == 1 and _traffic_ids(kept[0]) == everything


def _seed(database_url: str, revision: str = "head") -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine, revision)
    engine.dispose()


def test_restore_migrates_an_older_backup_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "old.db"
    _seed(f"sqlite:///{old}", "0005")
    copy = tmp_path / "old-backup.db"
    backup.backup(old, copy)
    assert _revision(copy) == "0005"

    database = tmp_path / "data" / "logharbor.db"
    _use(monkeypatch, f"sqlite:///{database}", tmp_path / "data")
    result = runner.invoke(app, ["restore", str(copy)])
    assert result.exit_code == 0, result.output
    assert f"0005 -> {migrate.head_revision()}" in result.output
    assert _revision(database) == migrate.head_revision()
    assert _integrity(database) == "ok"
    assert _revision(copy) == "0005"  # the backup file itself is left as it was


def test_restore_refuses_what_it_cannot_trust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "data" / "logharbor.db"
    _seed(f"sqlite:///{database}")
    conn = sqlite3.connect(database)
    conn.execute("INSERT INTO job_leases (name, next_run_at) VALUES ('marker', '2026-01-01')")
    conn.commit()
    conn.close()
    _use(monkeypatch, f"sqlite:///{database}", tmp_path / "data")

    newer = tmp_path / "newer.db"
    assert runner.invoke(app, ["backup", str(newer)]).exit_code == 0
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    result = runner.invoke(app, ["restore", str(newer)])
    assert result.exit_code == 1 and "newer LogHarbor" in result.output

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    result = runner.invoke(app, ["restore", str(garbage)])
    assert result.exit_code == 1 and "not a SQLite database" in result.output

    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.close()
    result = runner.invoke(app, ["restore", str(foreign)])
    assert result.exit_code == 1 and "not a LogHarbor backup" in result.output

    result = runner.invoke(app, ["restore", str(tmp_path / "missing.db")])
    assert result.exit_code == 1 and "no backup file" in result.output

    # Nothing above touched the database.
    conn = sqlite3.connect(database)
    assert conn.execute("SELECT name FROM job_leases").fetchall() == [("marker",)]
    conn.close()
    assert not [p for p in database.parent.iterdir() if "before-restore" in p.name]

    # An existing backup file is replaced only when asked.
    again = runner.invoke(app, ["backup", str(newer)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert runner.invoke(app, ["backup", str(newer), "--overwrite"]).exit_code == 0
    assert _revision(newer) == migrate.head_revision()


def test_a_server_does_not_start_on_a_database_being_restored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'logharbor.db'}"
    restoring = backup.sole_user(tmp_path / "logharbor.db")
    with restoring, pytest.raises(backup.BackupError, match="being restored"):
        backup.presence(url).__enter__()
    # Two workers in, a restore out.
    with backup.presence(url), backup.presence(url), pytest.raises(backup.ServerRunning):
        backup.sole_user(tmp_path / "logharbor.db").__enter__()


def test_backup_of_postgresql_points_at_pg_dump(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a plain CLI round trip; on PostgreSQL the README's pg_dump instead."""
    _use(monkeypatch, database_url, tmp_path / "data")
    target = tmp_path / "copy.db"
    result = runner.invoke(app, ["backup", str(target)])
    if database_url.startswith("postgresql"):
        assert result.exit_code == 1 and "pg_dump" in result.output
        assert not target.exists()
        assert "pg_dump" in runner.invoke(app, ["restore", str(target)]).output
        return
    assert result.exit_code == 0, result.output
    assert "secret_key" in result.output  # what else to keep
    assert "\x1b[" not in result.output  # no progress bar when stdout is not a terminal
    assert _revision(target) == migrate.head_revision()
    restored = runner.invoke(app, ["restore", str(target)])
    assert restored.exit_code == 0, restored.output
