"""The pipeline stores in bulk with writes only, falls back item by item, and answers retries
with the stored record."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from fixtures.records import body
from fixtures.sources import Source
from fixtures.users import AUser
from logharbor.common.errors import LogHarborError
from logharbor.common.ids import new_id
from logharbor.ingest.compose import prepare_record
from logharbor.ingest.pipeline import Submission
from logharbor.traffic.normalize import IngestConfig


def _statements(client: TestClient) -> list[str]:
    seen: list[str] = []
    engine = client.app.state.db.engine  # type: ignore[attr-defined]

    def remember(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", remember)
    return seen


def test_a_warm_bulk_reads_no_record_before_it_writes(
    client: TestClient, user: AUser, source: Source
) -> None:
    sid = source.id
    first = client.post(f"/http-traffic-record/{sid}", json=body(id=new_id()), headers=user.headers)
    assert first.status_code == 201
    seen = _statements(client)
    again = client.post(f"/http-traffic-record/{sid}", json=body(id=new_id()), headers=user.headers)
    assert again.status_code == 201
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    # Access is checked (sources, keys); records, domains and pathnames are not read. (With
    # events on ClickHouse the names' ids are confirmed by primary key, as no foreign key
    # guards a ClickHouse row: see ingest/clickhouse_store.py.)
    db = client.app.state.db  # type: ignore[attr-defined]
    unread = ("http_traffic", "domains", "pathnames") if db.events is None else ("http_traffic",)
    assert not any(table in s for s in reads for table in unread), reads


def test_a_group_with_a_retry_and_a_refusal_stores_the_rest(
    client: TestClient, user: AUser, source: Source, make_user: Any
) -> None:
    """Submissions committed together: a retry of a stored id, the same new id twice, and one
    refused source. The bulk fails on the stored id; item by item, each gets its own answer."""
    app: Any = client.app
    sid = source.id
    config = IngestConfig.from_settings(app.state.settings)
    stored_id, new_twice = new_id(), new_id()
    assert (
        client.post(
            f"/http-traffic-record/{sid}", json=body(id=stored_id), headers=user.headers
        ).status_code
        == 201
    )
    principal = _principal(user)
    stranger = _principal(make_user())

    def submission(who: Any, record_id: str, detail: bool = True) -> Submission:
        return Submission(who, sid, [prepare_record(body(id=record_id), config)], detail=detail)

    submissions = [
        submission(principal, stored_id),
        submission(principal, new_twice),
        submission(principal, new_twice, detail=False),
        submission(stranger, new_id()),
    ]

    writer = app.state.writer
    gate, holding = threading.Event(), threading.Event()

    async def run_together() -> list[Any]:
        # A job holds the writer until every submission waits behind it: one group.
        blocker = writer.submit_nowait(lambda tx: (holding.set(), gate.wait(10)))
        # Only once the writer runs the blocker is every item sure to wait behind it.
        await asyncio.to_thread(holding.wait, 10)
        tasks = [asyncio.ensure_future(writer.run_bulk(app.state.pipeline, s)) for s in submissions]
        await asyncio.to_thread(_wait_for_queue, writer, len(submissions))
        gate.set()
        await asyncio.wrap_future(blocker)
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    outcomes = client.portal.call(run_together)  # type: ignore[union-attr]
    assert outcomes[0][0]["id"] == stored_id  # the stored record, as a retry is answered
    assert outcomes[1][0]["id"] == new_twice
    assert outcomes[2][0]["id"] == new_twice
    assert isinstance(outcomes[3], LogHarborError)
    listed = client.get(f"/http-traffic-record/{sid}", headers=user.headers).json()
    assert sorted(r["id"] for r in listed["data"]) == sorted([stored_id, new_twice])


def _wait_for_queue(writer: Any, size: int) -> None:
    deadline = time.monotonic() + 10
    while writer.waiting < size:
        assert time.monotonic() < deadline, "the submissions never reached the writer"
        time.sleep(0.001)


def _principal(user: AUser) -> Any:
    from logharbor.auth.deps import Principal

    return Principal(user_id=user.id)


def test_a_warm_bulk_is_prepared_before_the_write_lock(
    client: TestClient, user: AUser, source: Source
) -> None:
    """Rows and driver parameters are made before the lock (the names are cached) and used
    as made; a cold cache leaves the work to the transaction."""
    from logharbor.ingest.clickhouse_store import ClickHouseRecordStore
    from logharbor.ingest.store import SqlRecordStore

    app: Any = client.app
    staged_seen: list[bool] = []
    events = app.state.db.events
    store_class = SqlRecordStore if events is None else ClickHouseRecordStore

    class Watched(store_class):  # type: ignore[valid-type,misc]
        def insert_exchanges(self, tx: Any, source_id: str, pending: Any, staged: Any = None):  # type: ignore[no-untyped-def]
            staged_seen.append(staged is not None)
            return super().insert_exchanges(tx, source_id, pending, staged)

    from logharbor.ingest.pipeline import Pipeline

    app.state.pipeline = Pipeline(Watched() if events is None else Watched(events))
    sid = source.id
    for _ in range(2):
        response = client.post(f"/http-traffic-record/{sid}", json=body(), headers=user.headers)
        assert response.status_code == 201
    assert staged_seen == [False, True]  # cold: names looked up in the transaction; then warm
    listed = client.get(f"/http-traffic-record/{sid}", headers=user.headers).json()
    assert listed["meta"]["totalItems"] == 2
