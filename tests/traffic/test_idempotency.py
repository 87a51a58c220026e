"""A record sent with a client id is stored once, however often a collector retries it."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from fixtures.records import body
from fixtures.sources import Source, create_source
from fixtures.users import AUser
from logharbor.common.ids import new_id


def test_compose_retry_with_the_same_id_is_stored_once(
    client: TestClient, user: AUser, source: Source, rows: Callable[[], dict[str, int]]
) -> None:
    record_id = new_id()
    first = client.post(
        f"/http-traffic-record/{source.id}", json=body(id=record_id), headers=user.headers
    )
    assert first.status_code == 201, first.text
    assert first.json()["id"] == record_id
    before = rows()

    retry = client.post(
        f"/http-traffic-record/{source.id}", json=body(id=record_id), headers=user.headers
    )
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert rows() == before


def test_batch_skips_ids_already_stored_and_repeated(
    client: TestClient, user: AUser, source: Source, rows: Callable[[], dict[str, int]]
) -> None:
    known, fresh = new_id(), new_id()
    client.post(f"/http-traffic-record/{source.id}", json=body(id=known), headers=user.headers)
    before = rows()
    batch = [body(id=known), body(id=fresh), body(id=fresh.upper()), body()]
    response = client.post(
        f"/http-traffic-record/{source.id}/batch", json=batch, headers=user.headers
    )
    assert response.status_code == 201, response.text
    ids = [item["id"] for item in response.json()["items"]]
    assert ids[:3] == [known, fresh, fresh]
    after = rows()
    assert after["http_traffic"] == before["http_traffic"] + 2  # fresh + the id-less record


def test_an_id_of_another_source_is_refused(
    client: TestClient, make_user: Callable[..., AUser], user: AUser, source: Source
) -> None:
    record_id = new_id()
    client.post(f"/http-traffic-record/{source.id}", json=body(id=record_id), headers=user.headers)
    other = make_user()
    other_source = create_source(client, other)
    response = client.post(
        f"/http-traffic-record/{other_source.id}", json=body(id=record_id), headers=other.headers
    )
    assert response.status_code == 409
    assert "id" in response.json()["fieldErrors"]
    # The first source's record is untouched.
    listed = client.get(f"/http-traffic-record/{source.id}", headers=user.headers).json()
    assert [item["id"] for item in listed["data"]] == [record_id]


def test_a_malformed_id_is_a_400(client: TestClient, user: AUser, source: Source) -> None:
    response = client.post(
        f"/http-traffic-record/{source.id}", json=body(id="not-a-uuid"), headers=user.headers
    )
    assert response.status_code == 400
    assert "id" in response.json()["fieldErrors"]


def test_a_batch_stores_its_other_records_when_one_id_is_another_sources(
    client: TestClient, make_user: Callable[..., AUser], user: AUser, source: Source
) -> None:
    taken = new_id()
    client.post(f"/http-traffic-record/{source.id}", json=body(id=taken), headers=user.headers)
    other = make_user()
    other_source = create_source(client, other)
    fresh = new_id()
    response = client.post(
        f"/http-traffic-record/{other_source.id}/batch",
        json=[body(id=fresh), body(id=taken), body()],
        headers=other.headers,
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["stored"] == 2 and answer["failed"] == 1
    assert [item["index"] for item in answer["items"]] == [0, 2]
    assert answer["items"][0]["id"] == fresh
    assert answer["errors"] == [{"index": 1, "errors": {"id": "Already used by another record"}}]
    listed = client.get(f"/http-traffic-record/{other_source.id}", headers=other.headers).json()
    assert len(listed["data"]) == 2 and taken not in {item["id"] for item in listed["data"]}
