"""Exceptions API: list (paginated, by status), one, resolve, reopen; tenancy."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert

from fixtures.records import ago, emit, event
from fixtures.sources import Source
from fixtures.users import AUser
from fixtures.waiting import WAIT
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database
from logharbor.db.tables import traffic_source_shares


def test_list_get_resolve_reopen(
    client: TestClient, user: AUser, db: Database, source: Source
) -> None:
    emit(db, [event(source.id, at=ago(minutes=10)), event(source.id, pathname="/users/9")])
    emit(db, [event(source.id, status=502, preview="Bad gateway from upstream 3")])
    emit(db, [event(source.id, status=404)])  # not FATAL

    listed = client.get(f"/exceptions/{source.id}", headers=user.headers)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["meta"] == {"page": 1, "pageLimit": 20, "totalItems": 2}
    by_status = {item["httpStatus"]: item for item in body["data"]}
    users = by_status[500]
    assert users["count"] == 2
    assert users["status"] == "open"
    assert users["route"] == "/users/:id"
    assert users["title"] == "500 GET /users/:id: User <n> exploded"
    assert users["level"] == "FATAL"
    assert users["firstSeenAt"] < users["lastSeenAt"]
    assert users["sample"]["pathname"] == "/users/9"
    assert by_status[502]["message"] == "Bad gateway from upstream <n>"

    one = client.get(f"/exceptions/{source.id}/{users['id']}", headers=user.headers)
    assert one.status_code == 200
    assert one.json() == users

    resolved = client.post(f"/exceptions/{source.id}/{users['id']}/resolve", headers=user.headers)
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["resolvedAt"] is not None
    open_only = client.get(f"/exceptions/{source.id}?status=open", headers=user.headers).json()
    assert [item["httpStatus"] for item in open_only["data"]] == [502]
    resolved_only = client.get(
        f"/exception/{source.id}?status=resolved", headers=user.headers
    ).json()
    assert [item["id"] for item in resolved_only["data"]] == [users["id"]]

    emit(db, [event(source.id, pathname="/users/77")])  # it recurs: reopened
    again = client.get(f"/exceptions/{source.id}/{users['id']}", headers=user.headers).json()
    assert (again["status"], again["count"], again["timesReopened"]) == ("open", 3, 1)
    assert again["resolvedAt"] is None and again["reopenedAt"] is not None

    client.post(f"/exceptions/{source.id}/{users['id']}/resolve", headers=user.headers)
    reopened = client.post(f"/exceptions/{source.id}/{users['id']}/reopen", headers=user.headers)
    assert reopened.status_code == 200
    assert reopened.json()["status"] == "open"


def test_pagination_and_sort(client: TestClient, user: AUser, db: Database, source: Source) -> None:
    for status in range(500, 505):
        emit(db, [event(source.id, status=status)] * (status - 499))
    page = client.get(
        f"/exceptions/{source.id}?pageLimit=2&page=2&sort=count&sortDirection=asc",
        headers=user.headers,
    ).json()
    assert page["meta"] == {"page": 2, "pageLimit": 2, "totalItems": 5}
    assert [item["count"] for item in page["data"]] == [3, 4]


def test_bad_input_and_tenancy(
    client: TestClient,
    user: AUser,
    make_user: Callable[..., AUser],
    db: Database,
    source: Source,
) -> None:
    emit(db, [event(source.id)])
    [exc] = client.get(f"/exceptions/{source.id}", headers=user.headers).json()["data"]
    bad = [
        (f"/exceptions/{source.id}?status=closed", "status"),
        (f"/exceptions/{source.id}?sort=message", "sort"),
        (f"/exceptions/{source.id}?page=0", "page"),
        ("/exceptions/not-a-uuid", "trafficSourceId"),
        (f"/exceptions/{source.id}/nope", "exceptionId"),
    ]
    for url, field in bad:
        response = client.get(url, headers=user.headers)
        assert response.status_code == 400, (url, response.text)
        assert field in response.json()["fieldErrors"], (url, response.json())
    missing = client.get(f"/exceptions/{source.id}/{new_id()}", headers=user.headers)
    assert missing.status_code == 404
    assert missing.json()["message"] == "Exception not found"

    stranger = make_user()
    assert client.get(f"/exceptions/{source.id}", headers=stranger.headers).status_code == 403
    assert (
        client.post(
            f"/exceptions/{source.id}/{exc['id']}/resolve", headers=stranger.headers
        ).status_code
        == 403
    )
    # A read-only share may look but not resolve.
    with db.write() as conn:
        conn.execute(
            insert(traffic_source_shares).values(
                id=new_id(),
                traffic_source_id=source.id,
                user_id=stranger.id,
                permission="READ_ONLY",
                created_at=utcnow(),
            )
        )
    assert client.get(f"/exceptions/{source.id}", headers=stranger.headers).status_code == 200
    assert (
        client.get(f"/exceptions/{source.id}/{exc['id']}", headers=stranger.headers).status_code
        == 200
    )
    assert (
        client.post(
            f"/exceptions/{source.id}/{exc['id']}/resolve", headers=stranger.headers
        ).status_code
        == 403
    )
    still = client.get(f"/exceptions/{source.id}/{exc['id']}", headers=user.headers).json()
    assert still["status"] == "open"


def test_core_logs_through_the_api_become_exceptions(
    client: TestClient, user: AUser, receiver: Any
) -> None:
    source = client.post(
        "/traffic-source",
        json={"name": "Core", "trafficDomain": "https://api.example.com"},
        headers=user.headers,
    ).json()["id"]
    hook = client.post(
        f"/webhooks/{source}", json={"value": receiver.url, "level": "fatal"}, headers=user.headers
    )
    assert hook.status_code == 201
    template = client.post(
        f"/core-pathname/{source}", json={"value": "/users/:id"}, headers=user.headers
    ).json()["id"]
    for _ in range(3):
        created = client.post(
            f"/core-log/{source}",
            json={"corePathnameId": template, "status": 500, "method": "delete", "elapsedTime": 9},
            headers=user.headers,
        )
        assert created.status_code == 201, created.text
    [exc] = client.get(f"/exceptions/{source}", headers=user.headers).json()["data"]
    assert (exc["kind"], exc["route"], exc["method"], exc["count"]) == (
        "core",
        "/users/:id",
        "DELETE",
        3,
    )
    assert exc["sample"]["kind"] == "core"

    # Core logs notify too: all three occurrences arrive (in one or more grouped messages).
    def delivered() -> int:
        return sum(alert["count"] for r in receiver.requests for alert in r.json()["alerts"])

    deadline = time.monotonic() + WAIT
    while delivered() < 3:
        assert time.monotonic() < deadline, f"only {delivered()} of 3 delivered"
        time.sleep(0.02)
    assert delivered() == 3
    assert receiver.requests[0].json()["alerts"][0]["record"]["route"] == "/users/:id"
