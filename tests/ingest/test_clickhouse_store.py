"""The ClickHouse record store's promise: an answer means stored, in both stores or neither."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fixtures.database import settings_for
from fixtures.network import free_port
from fixtures.records import body
from fixtures.sources import create_source
from fixtures.users import sign_up
from logharbor.app import create_app
from logharbor.db import tables


@pytest.fixture
def unreachable_events(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app with its events store on a port where nothing listens."""
    settings = settings_for(
        database_url, tmp_path, f"clickhouse://default@127.0.0.1:{free_port()}/gone"
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_ingest_is_a_503_and_writes_nothing_when_clickhouse_is_down(
    unreachable_events: TestClient,
) -> None:
    client = unreachable_events
    user = sign_up(client)
    source = create_source(client, user)
    response = client.post(
        f"/http-traffic-record/{source.id}", json=body(status=500), headers=user.headers
    )
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.read() as conn:
        # Nothing of the record's transaction stayed behind in SQL: no names, rollups,
        # exception groups or alerts for a record that was never stored.
        for table in (
            tables.domains,
            tables.pathnames,
            tables.traffic_rollups,
            tables.exceptions,
            tables.webhook_outbox,
        ):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0, (
                table.name
            )
