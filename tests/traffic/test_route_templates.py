"""Route templates: a record keeps its concrete pathname and is counted under its route."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fixtures.records import body, compose
from fixtures.sources import Source, create_source
from fixtures.users import AUser
from logharbor.common.timestamps import iso, utcnow

_NOW = utcnow()
STATS_RANGE = {"startDate": iso(_NOW - timedelta(days=1)), "endDate": iso(_NOW + timedelta(days=1))}


def _pathname_groups(client: TestClient, user: AUser, source_id: str) -> list[dict[str, Any]]:
    response = client.get(
        f"/stats/{source_id}",
        params={**STATS_RANGE, "interval": "1d", "groupBy": "pathname"},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    return response.json()["groups"]  # type: ignore[no-any-return]


def test_records_keep_their_path_and_stats_count_them_under_the_route(
    client: TestClient, user: AUser, source: Source
) -> None:
    sid = source.id
    first = compose(
        client, user.headers, sid, pathnameUrl="/orders/17", routeTemplate="/orders/{order_id}"
    )
    assert first["pathname"] == "/orders/17"
    assert first["routeTemplate"] == "/orders/{order_id}"
    batch = client.post(
        f"/http-traffic-record/{sid}/batch",
        json=[
            body(pathnameUrl="/orders/18", routeTemplate="/orders/{order_id}"),
            body(pathnameUrl="/orders/19", routeTemplate="/orders/{order_id}"),
            body(pathnameUrl="/health"),
        ],
        headers=user.headers,
    )
    assert batch.status_code == 201, batch.text
    plain = compose(client, user.headers, sid, pathnameUrl="/orders/20")
    assert plain["routeTemplate"] is None

    # One group for the route, however many orders; a record without a route by its path.
    groups = _pathname_groups(client, user, sid)
    assert {group["pathname"]: group["count"] for group in groups} == {
        "/orders/{order_id}": 3,
        "/health": 1,
        "/orders/20": 1,
    }

    detail = client.get(f"/http-traffic-record/{sid}/{first['id']}", headers=user.headers)
    assert detail.json() == first
    listed = client.get(f"/http-traffic-record/{sid}", headers=user.headers).json()["data"]
    assert {item["pathname"]: item["routeTemplate"] for item in listed} == {
        "/orders/17": "/orders/{order_id}",
        "/orders/18": "/orders/{order_id}",
        "/orders/19": "/orders/{order_id}",
        "/health": None,
        "/orders/20": None,
    }
    # A stats group's pathnameId finds its records: those under the route, by their own paths.
    group = groups[0]
    assert group["pathname"] == "/orders/{order_id}"
    found = client.get(
        f"/http-traffic-record/{sid}",
        params={"pathnameId": group["pathnameId"]},
        headers=user.headers,
    ).json()["data"]
    assert sorted(item["pathname"] for item in found) == ["/orders/17", "/orders/18", "/orders/19"]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("items/<int:pk>", "/items/<int:pk>"),  # Django writes its routes without the slash
        ("  /items/<int:item_id>  ", "/items/<int:item_id>"),
        ("", None),  # blank: no route
        (None, None),
    ],
)
def test_route_templates_as_frameworks_write_them(
    client: TestClient, user: AUser, source: Source, sent: Any, stored: Any
) -> None:
    record = compose(client, user.headers, source.id, pathnameUrl="/items/3", routeTemplate=sent)
    assert record["routeTemplate"] == stored


@pytest.mark.parametrize(
    "sent",
    [17, ["/a"], "/a b", "/tab\there", "/x" * 1100],
)
def test_a_bad_route_template_is_a_400_naming_it_and_stores_nothing(
    client: TestClient,
    user: AUser,
    source: Source,
    rows: Callable[[], dict[str, int]],
    sent: Any,
) -> None:
    before = rows()
    response = client.post(
        f"/http-traffic-record/{source.id}", json=body(routeTemplate=sent), headers=user.headers
    )
    assert response.status_code == 400, response.text
    assert "routeTemplate" in response.json()["fieldErrors"]
    batch = client.post(
        f"/http-traffic-record/{source.id}/batch",
        json=[body(routeTemplate=sent)],
        headers=user.headers,
    )
    assert batch.status_code == 400, batch.text
    assert "records.0.routeTemplate" in batch.json()["fieldErrors"]
    assert rows() == before


def test_deleting_a_route_keeps_its_records(
    client: TestClient, user: AUser, source: Source
) -> None:
    sid = source.id
    record = compose(
        client, user.headers, sid, pathnameUrl="/orders/5", routeTemplate="/orders/:id"
    )
    route_id = _pathname_groups(client, user, sid)[0]["pathnameId"]
    assert client.delete(f"/pathname/{route_id}", headers=user.headers).status_code == 204
    detail = client.get(f"/http-traffic-record/{sid}/{record['id']}", headers=user.headers)
    assert detail.status_code == 200
    assert detail.json()["pathname"] == "/orders/5" and detail.json()["routeTemplate"] is None
    # The next record with that route creates it again (the ingest cache's id is stale now).
    again = compose(client, user.headers, sid, pathnameUrl="/orders/6", routeTemplate="/orders/:id")
    assert again["routeTemplate"] == "/orders/:id"


def test_pathnames_can_be_templated_for_collectors_that_send_no_route(
    settings: Any, make_user: Callable[..., AUser]
) -> None:
    from logharbor.app import create_app

    templating = settings.model_copy(update={"stats_template_pathnames": True})
    with TestClient(create_app(templating)) as client:
        user = make_user()
        sid = create_source(client, user).id
        uuid_path = "/users/0190f1a2-3b4c-7d5e-8f60-718293a4b5c6"
        for path in ("/users/42", "/users/43?tab=1", uuid_path, "/health", "/search?q=x"):
            compose(client, user.headers, sid, pathnameUrl=path)
        sent = compose(client, user.headers, sid, pathnameUrl="/users/44", routeTemplate="/u/{n}")
        assert sent["routeTemplate"] == "/u/{n}"  # a template sent always wins
        listed = client.get(f"/http-traffic-record/{sid}", headers=user.headers).json()["data"]
        assert {item["pathname"]: item["routeTemplate"] for item in listed} == {
            "/users/42": "/users/:id",
            "/users/43?tab=1": "/users/:id",
            uuid_path: "/users/:id",
            "/health": None,
            "/search?q=x": "/search",
            "/users/44": "/u/{n}",
        }
        groups = _pathname_groups(client, user, sid)
    assert {group["pathname"]: group["count"] for group in groups} == {
        "/users/:id": 3,
        "/health": 1,
        "/search": 1,
        "/u/{n}": 1,
    }
