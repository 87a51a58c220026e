"""`logharbor export`: every record of a source, full bodies included, as JSONL or CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fixtures.records import compose
from fixtures.sources import Source
from fixtures.users import AUser
from logharbor.cli import app as cli
from logharbor.settings import Settings
from logharbor.traffic import export as exporter

runner = CliRunner()


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGHARBOR_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LOGHARBOR_EVENTS_URL", settings.events_url)
    monkeypatch.setenv("LOGHARBOR_DATA_DIR", str(settings.data_dir))


def test_jsonl_export_holds_every_record_with_full_bodies(
    client: TestClient, user: AUser, source: Source, cli_env: None
) -> None:
    big = {"text": "x" * 5000}
    created = [
        compose(client, user.headers, source.id, status=200 + n, responseBody=big) for n in range(5)
    ]
    result = runner.invoke(cli, ["export", source.id])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["id"] for line in lines] == [record["id"] for record in created]
    assert lines[0]["response"]["body"] == big
    assert lines[0]["createdAt"].endswith("Z")
    assert "exported 5 records" in result.stderr


def test_keyset_pages_neither_skip_nor_repeat(
    client: TestClient, user: AUser, source: Source
) -> None:
    ids = [compose(client, user.headers, source.id)["id"] for _ in range(7)]
    db = client.app.state.db  # type: ignore[attr-defined]
    from logharbor.traffic.filters import TrafficFilters

    exported = [
        r["id"] for r in exporter.iter_records(db, source.id, TrafficFilters(), page_size=3)
    ]
    assert sorted(exported) == sorted(ids)
    assert len(exported) == len(set(exported)) == 7


def test_csv_export_to_a_file(
    client: TestClient, user: AUser, source: Source, cli_env: None, tmp_path: Path
) -> None:
    compose(client, user.headers, source.id, method="delete", status=503)
    target = tmp_path / "out.csv"
    result = runner.invoke(cli, ["export", source.id, "--format", "csv", "-o", str(target)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 1
    assert rows[0]["method"] == "DELETE" and rows[0]["status"] == "503"
    assert rows[0]["level"] == "FATAL"
    # Secrets were masked at ingest, so the export cannot leak them.
    assert json.loads(rows[0]["requestHeaders"])["Authorization"] == "****"
    assert "Bearer abc" not in target.read_text()


def test_export_errors(client: TestClient, cli_env: None) -> None:
    assert runner.invoke(cli, ["export", "not-an-id"]).exit_code == 2
    unknown = runner.invoke(cli, ["export", "01a20500-2f21-7be3-81d5-443c0deec113"])
    assert unknown.exit_code == 1
    assert "no traffic source" in unknown.stderr
    bad_date = runner.invoke(
        cli, ["export", "01a20500-2f21-7be3-81d5-443c0deec113", "--since", "yesterday"]
    )
    assert bad_date.exit_code == 2


def test_date_window(client: TestClient, user: AUser, source: Source, cli_env: None) -> None:
    record = compose(client, user.headers, source.id)
    after = runner.invoke(cli, ["export", source.id, "--since", "2999-01-01T00:00:00Z"])
    assert after.exit_code == 0 and record["id"] not in after.stdout
    before = runner.invoke(cli, ["export", source.id, "--until", "2999-01-01T00:00:00Z"])
    assert record["id"] in before.stdout
