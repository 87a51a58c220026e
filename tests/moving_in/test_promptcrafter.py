"""`logharbor import promptcrafter`: a json-server db.json in the documented shape, and worse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from logharbor.cli import app as cli
from logharbor.db import tables
from logharbor.db.engine import Database, make_engine
from logharbor.moving_in import promptcrafter
from logharbor.moving_in.common import Owners

runner = CliRunner()


def _db_json() -> dict[str, Any]:
    """api/promptcrafter-db-source.json's shape: 3 users, 3 prompts, 3 logs, plus hard cases."""
    users = [
        {
            "_id": f"user{n}",
            "email": f"Writer{n}@Example.com",
            "passwordHash": f"hash{n}",
            "name": f"Writer {n}",
            "createdAt": "2025-06-01T10:00:00Z",
        }
        for n in (1, 2, 3)
    ]
    prompts = [
        {
            "_id": f"prompt{n}",
            "ownerId": f"user{n}",
            "title": f"Upgrade email {n}",
            "content": "Write a subject line",
            "model": "GPT-4o",
            "tags": ["email", "café"],
            "createdAt": f"2025-06-0{n}T13:01:00Z",
            "updatedAt": f"2025-06-0{n}T14:00:00.000Z",
        }
        for n in (1, 2, 3)
    ]
    logs = [
        {
            "_id": f"log{n}",
            "promptId": f"prompt{n}",
            "output": f"Ready to upgrade? ({n})",
            "notes": "short",
            "modelUsed": "GPT-4o",
            "score": 8,
            "createdAt": f"2025-06-0{n}T15:00:00.000Z",
        }
        for n in (1, 2, 3)
    ]
    prompts.append({**prompts[0], "_id": "prompt4", "title": "a"})  # too short for the API
    prompts.append({**prompts[0], "_id": "prompt5", "tags": None})  # tags null: stored []
    logs.append({**logs[0], "_id": "log4", "score": 9.5})  # the OpenAPI example's score
    logs.append({**logs[0], "_id": "log5", "promptId": "prompt4"})  # its prompt was refused
    logs.append(
        {
            "_id": "log6",
            "promptId": "prompt1",
            "output": "no notes, no score",
            "model": "Claude",
            "createdAt": "2025-06-01T16:00:00Z",
        }
    )
    logs.append({**logs[0], "_id": "log7", "createdAt": "yesterday"})
    return {"users": users, "prompts": prompts, "logs": logs}


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: conn.execute(
                    select(func.count()).select_from(getattr(tables, name))
                ).scalar_one()
                for name in ("users", "prompts", "prompt_search", "prompt_logs")
            }
    finally:
        engine.dispose()


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LOGHARBOR_DATABASE_URL", database_url)
    monkeypatch.setenv("LOGHARBOR_DATA_DIR", str(tmp_path / "data"))
    return database_url


def test_documented_file_imports_once_and_reads_back_through_the_api(
    env: str, tmp_path: Path, client: TestClient
) -> None:
    source = _write(tmp_path / "db.json", _db_json())
    first = runner.invoke(cli, ["import", "promptcrafter", str(source), "--create-users"])
    assert first.exit_code == 0, first.output
    assert "prompts  4 imported, 0 skipped (already imported), 1 refused" in first.output
    assert "logs     4 imported, 0 skipped (already imported), 3 refused" in first.output
    assert "prompt4: title: String should have at least 3 characters" in first.output
    assert "log4: score: Input should be a valid integer" in first.output
    assert "log5: promptId: prompt prompt4 was not imported" in first.output
    assert "log7: createdAt: not an ISO-8601 date-time" in first.output
    assert "writer1@example.com" in first.output and "set-password" in first.output
    assert "\x1b[" not in first.output  # no progress bar: stdout is not a terminal
    counts = _counts(env)
    assert counts == {"users": 3, "prompts": 4, "prompt_search": 4, "prompt_logs": 4}

    again = runner.invoke(cli, ["import", "promptcrafter", str(source), "--create-users"])
    assert again.exit_code == 0, again.output
    assert "prompts  0 imported, 4 skipped" in again.output
    assert "logs     0 imported, 4 skipped" in again.output
    assert _counts(env) == counts

    # The created account cannot sign in until its owner sets a password.
    login = {"email": "writer1@example.com", "password": "password123"}
    assert client.post("/auth/login", json=login).status_code == 401
    set_password = runner.invoke(
        cli,
        ["user", "set-password", "--email", "Writer1@example.com"],
        input="password123\npassword123\n",
    )
    assert set_password.exit_code == 0, set_password.output
    token = client.post("/auth/login", json=login).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}

    mine = client.get("/prompts", headers=headers).json()
    assert [p["title"] for p in mine] == ["Upgrade email 1", "Upgrade email 1"]
    first_prompt = next(p for p in mine if p["tags"])
    assert first_prompt["createdAt"] == "2025-06-01T13:01:00.000Z"
    assert first_prompt["updatedAt"] == "2025-06-01T14:00:00.000Z"
    assert first_prompt["ownerId"].startswith("user")
    assert [p for p in mine if not p["tags"]]  # prompt5's null tags
    logs = client.get(f"/logs?promptId={first_prompt['_id']}", headers=headers).json()
    assert sorted(log["output"] for log in logs) == ["Ready to upgrade? (1)", "no notes, no score"]
    bare = next(log for log in logs if log["output"] == "no notes, no score")
    assert "notes" not in bare and "score" not in bare and bare["modelUsed"] == "Claude"
    found = client.get("/search?q=CAFE%20upgrade", headers=headers).json()
    assert {p["_id"] for p in found} == {p["_id"] for p in mine if p["tags"]}
    # Deleting an imported prompt takes its imported logs with it, as for any prompt.
    assert client.delete(f"/prompts/{first_prompt['_id']}", headers=headers).status_code == 204
    assert client.get("/logs", headers=headers).json() == []


def test_owners_come_from_the_map_then_owner_then_the_file(
    env: str, tmp_path: Path, make_user: Any
) -> None:
    ops, lead = make_user(), make_user()
    users_map = _write(tmp_path / "users.json", {"user2": lead.email})
    source = _write(tmp_path / "db.json", _db_json())
    result = runner.invoke(
        cli,
        [
            "import",
            "promptcrafter",
            str(source),
            "--owner",
            ops.email,
            "--users-map",
            str(users_map),
        ],
    )
    assert result.exit_code == 0, result.output
    db = Database(make_engine(env))
    try:
        with db.read() as conn:
            owners = dict(
                conn.execute(select(tables.prompts.c.title, tables.prompts.c.owner_id)).all()
            )
    finally:
        db.dispose()
    assert owners["Upgrade email 2"] == lead.id
    assert owners["Upgrade email 3"] == owners["Upgrade email 1"] == ops.id


def test_unknown_owners_are_refused_unless_created(env: str, tmp_path: Path) -> None:
    source = _write(tmp_path / "db.json", _db_json())
    result = runner.invoke(cli, ["import", "promptcrafter", str(source)])
    assert result.exit_code == 0, result.output
    assert "prompts  0 imported, 0 skipped (already imported), 5 refused" in result.output
    assert "no LogHarbor user writer1@example.com (use --create-users" in result.output
    assert _counts(env)["prompts"] == 0


def test_an_interrupted_run_finishes_on_the_next(env: str, tmp_path: Path) -> None:
    data = _db_json()
    data["prompts"] += [
        {**data["prompts"][0], "_id": f"prompt{n}", "title": f"Bulk {n}"} for n in range(10, 40)
    ]
    data["logs"] += [
        {**data["logs"][0], "_id": f"log{n}", "promptId": f"prompt{n}"} for n in range(10, 40)
    ]
    source = _write(tmp_path / "db.json", data)
    db = Database(make_engine(env))
    seen = [0]

    def interrupt(count: int) -> None:
        seen[0] += count
        if seen[0] > 20:  # users, then a few pages of prompts
            raise KeyboardInterrupt

    owners = Owners(create=True)
    try:
        with pytest.raises(KeyboardInterrupt):
            promptcrafter.import_file(db, source, owners, advance=interrupt, page_size=7)
        partial = _counts(env)
        assert 0 < partial["prompts"] < 34 and partial["prompt_logs"] == 0
        assert partial["prompts"] == partial["prompt_search"]  # whole pages, nothing half-made
        summary = promptcrafter.import_file(db, source, Owners(create=True), page_size=7)
    finally:
        db.dispose()
    assert summary.tally("prompts").skipped == partial["prompts"]
    assert summary.tally("prompts").imported == 34 - partial["prompts"]
    assert _counts(env) == {"users": 3, "prompts": 34, "prompt_search": 34, "prompt_logs": 34}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prompts": [', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"todos": []}', "no prompts and no logs"),
    ],
)
def test_a_broken_file_is_refused_whole(
    env: str, tmp_path: Path, content: str, message: str
) -> None:
    source = tmp_path / "db.json"
    source.write_text(content)
    result = runner.invoke(cli, ["import", "promptcrafter", str(source), "--create-users"])
    assert result.exit_code == 1 and message in result.output
    assert _counts(env) == {"users": 0, "prompts": 0, "prompt_search": 0, "prompt_logs": 0}
    missing = runner.invoke(cli, ["import", "promptcrafter", str(tmp_path / "nope.json")])
    assert missing.exit_code == 1 and "cannot read" in missing.output
