"""Long commands show a progress bar (counts and rate) on a terminal and nothing otherwise."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from typer.testing import CliRunner

from fixtures.users import AUser
from logharbor import progress
from logharbor.cli import app as cli

runner = CliRunner()


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=150), out


def test_a_terminal_gets_counts_and_a_rate_and_a_pipe_gets_nothing() -> None:
    console, out = _terminal()
    with progress.tracking("import", total=40, unit="rows", console=console) as bar:
        for _ in range(4):
            bar.advance(10)
    shown = out.getvalue()
    assert "import" in shown and "40/40" in shown and "rows/s" in shown

    piped = io.StringIO()
    with progress.tracking("import", total=40, console=Console(file=piped)) as bar:
        bar.advance(40)
    assert piped.getvalue() == ""


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    console, out = _terminal()
    monkeypatch.setattr(progress, "stdout_console", lambda: console)
    return out


def test_export_prune_and_backup_report_progress_on_a_terminal(
    client: TestClient,
    user: AUser,
    database_url: str,
    events_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    terminal: io.StringIO,
) -> None:
    monkeypatch.setenv("LOGHARBOR_DATABASE_URL", database_url)
    monkeypatch.setenv("LOGHARBOR_EVENTS_URL", events_url)
    monkeypatch.setenv("LOGHARBOR_DATA_DIR", str(tmp_path / "data"))
    source = client.post(
        "/traffic-source",
        json={"name": "Shop", "trafficDomain": "https://shop.io"},
        headers=user.headers,
    ).json()
    for n in range(3):
        composed = client.post(
            f"/http-traffic-record/{source['id']}",
            json={"domainUrl": "https://shop.io", "pathnameUrl": f"/p/{n}", "status": 200,
                  "method": "GET", "elapsedTime": 1, "requestHeaders": {}, "responseHeaders": {}},
            headers=user.headers,
        )  # fmt: skip
        assert composed.status_code == 201, composed.text

    exported = runner.invoke(cli, ["export", source["id"], "-o", str(tmp_path / "out.jsonl")])
    assert exported.exit_code == 0, exported.output
    assert "3/?" in terminal.getvalue() and "records/s" in terminal.getvalue()

    pruned = runner.invoke(cli, ["prune"])
    assert pruned.exit_code == 0, pruned.output
    assert "prune" in terminal.getvalue() and "batches/s" in terminal.getvalue()

    if database_url.startswith("sqlite"):
        backed_up = runner.invoke(cli, ["backup", str(tmp_path / "copy.db")])
        assert backed_up.exit_code == 0, backed_up.output
        shown = terminal.getvalue()
        # A small database is copied in one step: no rate yet, but the pages are counted.
        assert "backup" in shown and "100%" in shown.split("backup")[-1]
