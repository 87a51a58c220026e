"""The seed pages' request and response examples, as written."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from fixtures.sources import Source
from fixtures.users import AUser

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# seeds/arkyn-create-response.md, request example.
RESPONSE_EXAMPLE = {
    "headers": {"Content-Type": "application/json", "X-Request-Id": "xyz-789"},
    "body": {"status": "success", "requestId": "request-abc-123"},
}


def test_create_response_as_in_the_seed(client: TestClient, user: AUser) -> None:
    response = client.post("/response", json=RESPONSE_EXAMPLE, headers=user.headers)

    assert response.status_code == 201
    created = response.json()
    assert UUID7.match(created["id"])
    assert created["headers"] == RESPONSE_EXAMPLE["headers"]
    assert created["body"] == RESPONSE_EXAMPLE["body"]
    assert ISO.match(created["createdAt"])


def test_create_response_errors_as_in_the_seed(client: TestClient, user: AUser) -> None:
    missing_headers = client.post("/response", json={"body": {}}, headers=user.headers)
    assert missing_headers.status_code == 400
    assert missing_headers.json()["name"] == "BadRequest"
    assert "headers" in missing_headers.json()["fieldErrors"]

    no_token = client.post("/response", json=RESPONSE_EXAMPLE)
    assert no_token.status_code == 400
    bad_token = client.post(
        "/response", json=RESPONSE_EXAMPLE, headers={"Authorization": "Bearer x"}
    )
    assert bad_token.status_code == 401


def _create_prerequisites(client: TestClient, user: AUser, source_id: str) -> dict[str, str]:
    domain = client.post(
        f"/domain/{source_id}",
        json={"value": "https://api.example.com", "protocol": "HTTPS"},
        headers=user.headers,
    )
    assert domain.status_code == 201, domain.text
    pathname = client.post(
        f"/pathname/{source_id}/{domain.json()['id']}",
        json={"value": "/v1/orders"},
        headers=user.headers,
    )
    assert pathname.status_code == 201, pathname.text
    request = client.post(
        "/request",
        json={"headers": {"Content-Type": "application/json"}, "body": {"item": 1}},
        headers=user.headers,
    )
    assert request.status_code == 201, request.text
    response = client.post("/response", json=RESPONSE_EXAMPLE, headers=user.headers)
    assert response.status_code == 201, response.text
    return {
        "domainId": domain.json()["id"],
        "pathnameId": pathname.json()["id"],
        "requestId": request.json()["id"],
        "responseId": response.json()["id"],
    }


def test_create_http_traffic_as_in_the_seed(
    client: TestClient, user: AUser, source: Source
) -> None:
    ids = _create_prerequisites(client, user, source.id)
    # seeds/arkyn-create-http-traffic.txt, request example, with the ids created first.
    example = {
        "status": 201,
        "method": "POST",
        "elapsedTime": 150,
        "trafficUserId": "user-456",
        **ids,
    }

    response = client.post(f"/http-traffic/{source.id}", json=example, headers=user.headers)

    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {
        "id",
        "status",
        "method",
        "level",
        "elapsedTime",
        "trafficUserId",
        "trafficSourceId",
        "domainId",
        "pathnameId",
        "requestId",
        "responseId",
        "createdAt",
    }
    assert UUID7.match(created["id"])
    assert created["status"] == 201
    assert created["method"] == "POST"
    assert created["level"] == "INFO"
    assert created["elapsedTime"] == 150
    assert created["trafficUserId"] == "user-456"
    assert created["trafficSourceId"] == source.id
    assert {k: created[k] for k in ids} == ids
    assert ISO.match(created["createdAt"])

    # The original's plural path is an alias of the same handler.
    again = _create_prerequisites(client, user, source.id)
    plural = client.post(
        f"/http-traffics/{source.id}",
        json={**example, **again, "trafficUserId": None, "status": 500, "method": "get"},
        headers=user.headers,
    )
    assert plural.status_code == 201, plural.text
    assert plural.json()["level"] == "FATAL"
    assert plural.json()["method"] == "GET"
    assert plural.json()["trafficUserId"] is None


def test_http_traffic_seed_errors(client: TestClient, user: AUser, source: Source) -> None:
    ids = _create_prerequisites(client, user, source.id)
    example = {"status": 201, "method": "POST", "elapsedTime": 150, **ids}

    # The seed's placeholder ids are not UUIDs: invalid input, naming the fields.
    placeholders = {
        **example,
        "domainId": "e1f2g3h4-i5j6-7890-1234-567890abcdef",
        "requestId": "i1j2k3l4-m5n6-7890-1234-567890abcdef",
    }
    bad = client.post(f"/http-traffic/{source.id}", json=placeholders, headers=user.headers)
    assert bad.status_code == 400
    assert set(bad.json()["fieldErrors"]) == {"domainId", "requestId"}

    unknown = {**example, "responseId": "0197548f-0e8e-7550-b283-f26fd98a9423"}
    missing = client.post(f"/http-traffic/{source.id}", json=unknown, headers=user.headers)
    assert missing.status_code == 404
    assert set(missing.json()["fieldErrors"]) == {"responseId"}

    no_source = client.post(
        "/http-traffic/0197548f-0e8e-7550-b283-f26fd98a9423", json=example, headers=user.headers
    )
    assert no_source.status_code == 404
