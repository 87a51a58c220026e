"""List routes: the filters the docs promise, sorting on whitelisted fields, pagination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from fixtures import event_rows
from fixtures.records import compose
from fixtures.sources import Source
from fixtures.users import AUser
from logharbor.common.timestamps import utcnow
from logharbor.db.engine import Database


def _seed(client: TestClient, user: AUser, sid: str) -> list[dict[str, Any]]:
    made = [
        compose(client, user.headers, sid, method="GET", status=200, elapsedTime=5.5),
        compose(
            client,
            user.headers,
            sid,
            method="post",
            status=201,
            elapsedTime=50,
            pathnameUrl="/v1/Orders",
            trafficUserId="u-1",
        ),
        compose(
            client,
            user.headers,
            sid,
            method="DELETE",
            status=404,
            elapsedTime=1,
            pathnameUrl="/v1/orders/7",
        ),
        compose(
            client,
            user.headers,
            sid,
            method="get",
            status=503,
            elapsedTime=900,
            domainUrl="https://other.example.com",
            pathnameUrl="/health",
            trafficUserId="u-1",
        ),
    ]
    return made


def _ids(client: TestClient, user: AUser, path: str) -> list[str]:
    response = client.get(path, headers=user.headers)
    assert response.status_code == 200, (path, response.text)
    body = response.json()
    assert body["meta"]["totalItems"] == len(body["data"]), (path, body["meta"])
    return [item["id"] for item in body["data"]]


def test_filters(client: TestClient, user: AUser, source: Source) -> None:
    sid = source.id
    r = _seed(client, user, sid)
    ids = [x["id"] for x in r]
    for base in (f"/http-traffic-record/{sid}", f"/http-traffic/{sid}"):

        def query(q: str, base: str = base) -> set[str]:
            return set(_ids(client, user, f"{base}?{q}"))

        assert query("method=get") == {ids[0], ids[3]}
        assert query("method=DELETE") == {ids[2]}
        assert query("status=404") == {ids[2]}
        assert query("status=5xx") == {ids[3]}
        assert query("level=fatal") == {ids[3]}
        assert query("level=FATAL") == {ids[3]}
        assert query("level=Warning") == {ids[2]}
        assert query("level=info") == {ids[0], ids[1]}
        assert query("domain=https://other.example.com/") == {ids[3]}
        assert query(f"domainId={r[3]['domainId']}") == {ids[3]}
        assert query("pathname=/v1/users") == {ids[0]}
        assert query(f"pathnameId={r[2]['pathnameId']}") == {ids[2]}
        assert query("trafficUserId=u-1") == {ids[1], ids[3]}
        assert query("q=ORDERS") == {ids[1], ids[2]}
        assert query("search=health") == {ids[3]}
        assert query("q=%25") == set()  # a literal %, not a wildcard
        assert query("method=get&level=fatal&trafficUserId=u-1") == {ids[3]}
        now = datetime.now(UTC)
        past = (now - timedelta(hours=1)).isoformat()
        future = (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        assert query(f"startDate={past.replace('+', '%2B')}") == set(ids)
        assert query(f"startDate={future}") == set()
        assert query(f"endDate={future}") == set(ids)
        assert query(f"endDate={now.date().isoformat()}") == set(ids)
        assert query(f"endDate={(now - timedelta(days=1)).date().isoformat()}") == set()


def test_date_bounds_are_exact(client: TestClient, user: AUser, source: Source) -> None:
    sid = source.id
    record = compose(client, user.headers, sid)
    at = record["createdAt"]
    assert _ids(client, user, f"/http-traffic-record/{sid}?startDate={at}&endDate={at}") == [
        record["id"]
    ]


def test_sorting(client: TestClient, user: AUser, source: Source) -> None:
    sid = source.id
    r = _seed(client, user, sid)
    by_time = _ids(client, user, f"/http-traffic-record/{sid}?sort=elapsedTime&sortDirection=asc")
    assert by_time == [r[2]["id"], r[0]["id"], r[1]["id"], r[3]["id"]]
    by_status = _ids(client, user, f"/http-traffic/{sid}?sort=status")
    assert by_status == [r[3]["id"], r[2]["id"], r[1]["id"], r[0]["id"]]
    newest_first = _ids(client, user, f"/http-traffic-record/{sid}")
    assert newest_first == [x["id"] for x in reversed(r)]

    for path in (
        f"/http-traffic-record/{sid}?sort=password",
        f"/http-traffic/{sid}?sort=request",
        f"/core-log/{sid}?sort=nope",
        f"/domain/{sid}?sort=trafficSourceId",
        "/traffic-source?sort=userId",
        f"/http-traffic/{sid}?sortDirection=sideways",
    ):
        response = client.get(path, headers=user.headers)
        assert response.status_code == 400, path
        assert set(response.json()["fieldErrors"]) & {"sort", "sortDirection"}


def test_bad_filter_values(client: TestClient, user: AUser, source: Source) -> None:
    sid = source.id
    for query, field in (
        ("status=abc", "status"),
        ("status=700", "status"),
        ("level=DEBUG", "level"),
        ("method=FETCH", "method"),
        ("startDate=yesterday", "startDate"),
        ("endDate=2025-13-40", "endDate"),
        ("startDate=2025-02-01&endDate=2025-01-01", "endDate"),
        ("domainId=nope", "domainId"),
        ("domain=ftp://x", "domain"),
        ("page=0", "page"),
        ("pageLimit=abc", "pageLimit"),
    ):
        response = client.get(f"/http-traffic-record/{sid}?{query}", headers=user.headers)
        assert response.status_code == 400, query
        assert field in response.json()["fieldErrors"], (query, response.json())


def test_pagination(client: TestClient, user: AUser, source: Source) -> None:
    sid = source.id
    made = [compose(client, user.headers, sid, status=200 + i)["id"] for i in range(5)]
    first = client.get(f"/http-traffic-record/{sid}?pageLimit=2", headers=user.headers).json()
    assert first["meta"] == {"page": 1, "pageLimit": 2, "totalItems": 5}
    third = client.get(f"/http-traffic-record/{sid}?pageLimit=2&page=3", headers=user.headers)
    assert [x["id"] for x in third.json()["data"]] == [made[0]]
    capped = client.get(f"/http-traffic-record/{sid}?pageLimit=100000", headers=user.headers)
    assert capped.json()["meta"]["pageLimit"] == 100


def test_core_log_filters(client: TestClient, user: AUser, source: Source) -> None:
    sid = source.id
    users_route = client.post(
        f"/core-pathname/{sid}", json={"value": "/users/:id"}, headers=user.headers
    ).json()
    orders = client.post(
        f"/core-pathname/{sid}", json={"value": "/orders"}, headers=user.headers
    ).json()
    logs = []
    for route, status, method in (
        (users_route, 200, "get"),
        (users_route, 500, "PUT"),
        (orders, 404, "get"),
    ):
        created = client.post(
            f"/core-log/{sid}",
            json={
                "status": status,
                "method": method,
                "elapsedTime": 12.25,
                "corePathnameId": route["id"],
            },
            headers=user.headers,
        )
        assert created.status_code == 201
        assert created.json()["elapsedTime"] == 12.25
        logs.append(created.json()["id"])
    base = f"/core-log/{sid}"
    assert set(_ids(client, user, f"{base}?level=fatal")) == {logs[1]}
    assert set(_ids(client, user, f"{base}?corePathnameId={orders['id']}")) == {logs[2]}
    assert set(_ids(client, user, f"{base}?q=USERS")) == {logs[0], logs[1]}
    assert set(_ids(client, user, f"{base}?pathname=/orders&method=GET")) == {logs[2]}
    assert len(_ids(client, user, f"{base}?sort=status&sortDirection=asc")) == 3


def test_newest_first_pages_span_days_and_weeks(
    client: TestClient, user: AUser, source: Source, db: Database
) -> None:
    """Pages of the default order hold the newest records of all, whether the page is filled
    by the last day, the last week or only by older records (ClickHouse reads recent windows
    first), with and without a filter and a start date."""
    sid = source.id
    ages = {"now": 0.0, "hours": 0.5, "days": 3.0, "weeks": 20.0, "months": 60.0}
    made = {
        name: compose(client, user.headers, sid, pathnameUrl=f"/{name}", status=500)["id"]
        for name in ages
    }
    for name, days in ages.items():
        if days:
            event_rows.age(db, "http_traffic", [made[name]], utcnow() - timedelta(days=days))
    newest_first = [made[name] for name in ages]  # ages ascend

    def page(query: str) -> dict[str, Any]:
        response = client.get(f"/http-traffic-record/{sid}?{query}", headers=user.headers)
        assert response.status_code == 200, response.text
        return response.json()

    for size in (1, 2, 3, 4, 5, 6):
        got = []
        for number in range(1, 7):
            body = page(f"pageLimit={size}&page={number}")
            assert body["meta"]["totalItems"] == 5
            got += [item["id"] for item in body["data"]]
        assert got == newest_first, size
    assert [x["id"] for x in page("pageLimit=2&status=5xx&q=s")["data"]] == [
        made["hours"],
        made["days"],
    ]
    since = (utcnow() - timedelta(days=30)).isoformat().replace("+00:00", "Z")
    body = page(f"pageLimit=3&page=2&startDate={since}")
    assert body["meta"]["totalItems"] == 4
    assert [x["id"] for x in body["data"]] == [made["weeks"]]
    oldest = page("pageLimit=2&sortDirection=asc")["data"]
    assert [x["id"] for x in oldest] == [made["months"], made["weeks"]]
