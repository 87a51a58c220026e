"""Calls stored before the LLM rollups existed (migration 0012 stored them, 0013 added the
rollups) are rolled up by 0013 itself: taken back to 0012 and up again, a database holds the
same rollups as ingest wrote, and prompt logs keep the calls they were made from (0017 dropped
that link's foreign key, for calls on ClickHouse). Both SQL databases: these are calls stored
in the SQL database, so the app here keeps them there whatever the backend (on ``chdb`` too,
whose metadata is on SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from fixtures.database import settings_for
from fixtures.sources import create_source, ingest_key
from fixtures.spans import llm_call, post_spans
from fixtures.users import AUser, sign_up
from logharbor.app import create_app
from logharbor.db import migrate
from logharbor.db.engine import make_engine
from logharbor.db.tables import generations, llm_rollups, prompt_logs


def _rollups(database_url: str) -> list[tuple[Any, ...]]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(llm_rollups)).all()
    finally:
        engine.dispose()
    # Costs summed in another order may differ in the last bits.
    return sorted(tuple(round(v, 12) if isinstance(v, float) else v for v in row) for row in rows)


def test_calls_stored_before_the_rollups_are_rolled_up_by_their_migration(
    database_url: str, tmp_path: Path
) -> None:
    with TestClient(create_app(settings_for(database_url, tmp_path))) as client:
        _roll_back_and_up(client, sign_up(client), database_url)


def _roll_back_and_up(client: TestClient, user: AUser, database_url: str) -> None:
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    prompt = client.post(
        "/prompts",
        json={"title": "Greeting", "content": "Say hi", "model": "gpt-4o-mini"},
        headers=user.headers,
    ).json()["_id"]
    answer = post_spans(
        client,
        key,
        llm_call(0, "/chat", "gpt-4o-mini", (1000, 500, 200)),
        llm_call(1, "/chat", "gpt-4o-mini", (10, 5, 0), failed=True),
        llm_call(61, "/summary", "claude-sonnet-4-5", (300, 40, 0), prompt=(prompt, 1)),
        llm_call(62, None, "no-such-model", (7, 7, 0)),
    )
    assert answer == {}  # nothing refused
    written_at_ingest = _rollups(database_url)
    assert written_at_ingest  # three resolutions of several keys

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            stored = [dict(row) for row in conn.execute(select(generations)).mappings()]
            links = conn.execute(select(prompt_logs.c.id, prompt_logs.c.generation_id)).all()
        assert len(links) == 1 and links[0][1] in {row["id"] for row in stored}
        migrate.downgrade(engine, "0012")
        with engine.connect() as conn:
            # Walking down keeps the calls (on SQLite 0015 once rebuilt traffic_sources, and
            # the cascade took every call with it).
            assert [dict(r) for r in conn.execute(select(generations)).mappings()] == stored
        assert len(stored) == 4
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(select(prompt_logs.c.id, prompt_logs.c.generation_id)).all() == (
                links
            )
    finally:
        engine.dispose()
    assert _rollups(database_url) == written_at_ingest
