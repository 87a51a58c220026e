"""The explorer opens on the last 24 hours; "All time" and the API still show everything."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from fixtures import event_rows
from fixtures.records import compose
from fixtures.sources import Source
from fixtures.users import AUser
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database
from logharbor.ui.session import COOKIE


def _two_records(client: TestClient, user: AUser, db: Database, sid: str) -> None:
    compose(client, user.headers, sid, pathnameUrl="/made-just-now", status=200)
    old = compose(client, user.headers, sid, pathnameUrl="/made-days-ago", status=200)
    event_rows.age(db, "http_traffic", [old["id"]], utcnow() - timedelta(days=3))


def test_the_explorer_shows_the_last_24_hours_unless_told_otherwise(
    client: TestClient, user: AUser, source: Source, db: Database
) -> None:
    sid = source.id
    _two_records(client, user, db, sid)
    client.cookies.set(COOKIE, user.token)

    page = client.get(f"/ui/sources/{sid}")
    assert page.status_code == 200
    assert "/made-just-now" in page.text and "/made-days-ago" not in page.text
    assert '<option value="24h" selected>' in page.text
    assert '<option value="all" >' in page.text  # offered, not chosen
    # The live table's polls and the page links keep the range in force.
    table = client.get(f"/ui/sources/{sid}/records?push=1")
    assert "/made-days-ago" not in table.text
    assert table.headers["HX-Push-Url"] == f"/ui/sources/{sid}?range=24h"

    everything = client.get(f"/ui/sources/{sid}?range=all")
    assert "/made-just-now" in everything.text and "/made-days-ago" in everything.text
    assert '<option value="all" selected>' in everything.text
    week = client.get(f"/ui/sources/{sid}/records?range=7d")
    assert "/made-days-ago" in week.text


def test_the_api_list_without_a_window_still_counts_every_record(
    client: TestClient, user: AUser, source: Source, db: Database
) -> None:
    sid = source.id
    _two_records(client, user, db, sid)
    body = client.get(f"/http-traffic-record/{sid}", headers=user.headers).json()
    assert body["meta"]["totalItems"] == 2
    assert {item["pathname"] for item in body["data"]} == {
        "/made-just-now",
        "/made-days-ago",
    }
