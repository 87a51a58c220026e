"""Batch ingest: per-item errors, limits, ingest keys, the name cache and the rollups."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from fixtures import event_rows
from fixtures.records import body
from fixtures.sources import create_source, ingest_key
from fixtures.users import AUser, bearer
from logharbor.common.ids import new_id
from logharbor.db.tables import (
    domains,
    http_traffic,
    pathnames,
    requests,
)

RECORD: dict[str, Any] = {
    "domainUrl": "https://api.example.com",
    "pathnameUrl": "/v1/orders",
    "status": 201,
    "protocol": "https",
    "method": "post",
    "trafficUserId": None,
    "elapsedTime": 12.5,
    "requestHeaders": {"Authorization": "Bearer s3cret", "Content-Type": "application/json"},
    "requestBody": {"sku": "A-1", "password": "hunter2"},
    "queryParams": {"page": "1"},
    "responseHeaders": {"content-type": "application/json"},
    "responseBody": {"id": 7},
}


def _record(**changes: Any) -> dict[str, Any]:
    return body(RECORD, **changes)


def _count(client: TestClient, table: Any, source_id: str) -> int:
    return event_rows.count(client.app.state.db, table.name, source_id)  # type: ignore[attr-defined]


def test_good_items_are_stored_and_bad_ones_reported(client: TestClient, user: AUser) -> None:
    source_id = create_source(client, user).id
    batch = [
        _record(),
        _record(status="abc"),
        _record(pathnameUrl="/v1/users/1", method="GET", status=500, elapsedTime=3),
        _record(method="FETCH", elapsedTime=-1),
        _record(domainUrl="http://cdn.example.com", requestBody="plain text"),
        "not an object",
    ]
    response = client.post(
        f"/http-traffic-record/{source_id}/batch", json=batch, headers=user.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["received"], body["stored"], body["failed"]) == (6, 3, 3)
    assert [item["index"] for item in body["items"]] == [0, 2, 4]
    errors = {item["index"]: item["errors"] for item in body["errors"]}
    assert set(errors) == {1, 3, 5}
    assert "status" in errors[1]
    assert "method" in errors[3] and "elapsedTime" in errors[3]
    assert _count(client, http_traffic, source_id) == 3

    # Stored through the same normalization as compose: enums upper-cased, secrets masked.
    stored = client.get(
        f"/http-traffic-record/{source_id}/{body['items'][0]['id']}", headers=user.headers
    ).json()
    assert stored["method"] == "POST"
    assert "s3cret" not in str(stored["request"]["headers"])
    assert "hunter2" not in str(stored["request"]["body"])
    # And rolled up in the same transaction (statistics read only the rollups).
    stats = client.get(f"/stats/{source_id}", headers=user.headers).json()
    assert stats["totals"]["count"] == 3


def test_plural_alias_and_records_object(client: TestClient, user: AUser) -> None:
    source_id = create_source(client, user).id
    response = client.post(
        f"/http-traffic-records/{source_id}/batch",
        json={"records": [_record(), _record()]},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["stored"] == 2


def test_family_neutral_ingest_with_an_ingest_key(
    client: TestClient, user: AUser, make_user: Any
) -> None:
    source_id = create_source(client, user).id
    key = ingest_key(client, user, source_id)
    response = client.post("/api/v1/ingest", json={"records": [_record()]}, headers=bearer(key))
    assert response.status_code == 201, response.text
    response = client.post(
        "/api/v1/ingest",
        json={"trafficSourceId": source_id, "records": [_record(), _record()]},
        headers=bearer(key),
    )
    assert response.status_code == 201, response.text
    assert _count(client, http_traffic, source_id) == 3

    other_source = create_source(client, make_user()).id
    response = client.post(
        "/api/v1/ingest",
        json={"trafficSourceId": other_source, "records": [_record()]},
        headers=bearer(key),
    )
    assert response.status_code == 403
    response = client.post(
        "/api/v1/ingest",
        json={"trafficSourceId": other_source, "records": [_record()]},
        headers=user.headers,
    )
    assert response.status_code == 403
    # A user token must name the source.
    response = client.post("/api/v1/ingest", json={"records": [_record()]}, headers=user.headers)
    assert response.status_code == 400
    assert "trafficSourceId" in response.json()["fieldErrors"]
    assert _count(client, http_traffic, other_source) == 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ([], 400, "records"),
        ({"records": "x"}, 400, "records"),
        ([RECORD] * 1001, 400, "records"),
        ([{"status": 200}, {"method": "GET"}], 400, "records.0.domainUrl"),
        # A payload fault is named with the schema's faults, not only once they are fixed.
        ([_record(status="200", requestHeaders={"a": "x\u0000"})], 400, "records.0.status"),
        (
            [_record(status="200", requestHeaders={"a": "x\u0000"})],
            400,
            "records.0.requestHeaders",
        ),
        ([_record(responseHeaders={"a": "x\u0000"})], 400, "records.0.responseHeaders"),
    ],
)
def test_rejected_batches_store_nothing(
    client: TestClient, user: AUser, body: Any, status: int, field: str
) -> None:
    source_id = create_source(client, user).id
    response = client.post(
        f"/http-traffic-record/{source_id}/batch", json=body, headers=user.headers
    )
    assert response.status_code == status, response.text
    assert field in response.json()["fieldErrors"]
    assert _count(client, http_traffic, source_id) == 0
    assert _count(client, requests, source_id) == 0


def test_limits_content_type_and_auth(client: TestClient, user: AUser) -> None:
    source_id = create_source(client, user).id
    url = f"/http-traffic-record/{source_id}/batch"
    big = [_record(responseBody="x" * 900_000) for _ in range(6)]
    assert client.post(url, json=big, headers=user.headers).status_code == 413
    bad_json = client.post(
        url, content=b"[{", headers={**user.headers, "content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    text = client.post(url, content=b"[]", headers={**user.headers, "content-type": "text/plain"})
    assert text.status_code == 415
    assert client.post(url, json=[RECORD]).status_code == 400  # no token
    assert client.post(url, json=[RECORD], headers=bearer("nope")).status_code == 401
    missing = f"/http-traffic-record/{new_id()}/batch"
    assert client.post(missing, json=[RECORD], headers=user.headers).status_code == 404
    assert (
        client.post("/http-traffic-record/x/batch", json=[RECORD], headers=user.headers).status_code
        == 400
    )
    assert _count(client, http_traffic, source_id) == 0


def test_stale_cached_names_are_refreshed(client: TestClient, user: AUser) -> None:
    source_id = create_source(client, user).id
    url = f"/http-traffic-record/{source_id}/batch"
    assert client.post(url, json=[_record()], headers=user.headers).status_code == 201
    cache = client.app.state.pipeline.store_backend.names  # type: ignore[attr-defined]
    misses = cache.misses
    assert client.post(url, json=[_record()], headers=user.headers).status_code == 201
    assert cache.misses == misses  # warm: no get-or-create at all
    # The domain (and, by cascade, its pathnames and records) is deleted behind the cache.
    with client.app.state.db.write() as conn:  # type: ignore[attr-defined]
        conn.execute(delete(domains).where(domains.c.traffic_source_id == source_id))
    response = client.post(url, json=[_record(), _record()], headers=user.headers)
    assert response.status_code == 201, response.text
    # Both new records name a domain and a pathname that exist (none dangles).
    new_ids = {item["id"] for item in response.json()["items"]}
    listed = client.get(f"/http-traffic/{source_id}", headers=user.headers).json()["data"]
    rows = [row for row in listed if row["id"] in new_ids]
    assert len(rows) == 2
    with client.app.state.db.read() as conn:  # type: ignore[attr-defined]
        for row in rows:
            assert conn.execute(select(domains.c.id).where(domains.c.id == row["domainId"])).first()
            assert conn.execute(
                select(pathnames.c.id).where(pathnames.c.id == row["pathnameId"])
            ).first()
