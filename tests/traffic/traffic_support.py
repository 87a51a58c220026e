"""Request bodies and small calls shared by the traffic tests (plain functions)."""

from __future__ import annotations

import copy
import json
from typing import Any

from fastapi.testclient import TestClient

from helpers import AUser

# §12.2(a): the pinned 3.0.1-beta.72 collector — upper-case enums, JSON objects, no source id.
BETA72_BODY: dict[str, Any] = {
    "domainUrl": "https://api.example.com",
    "pathnameUrl": "/v1/users",
    "status": 200,
    "protocol": "HTTPS",
    "method": "GET",
    "trafficUserId": None,
    "elapsedTime": 123.456,
    "requestHeaders": {"Authorization": "Bearer abc", "Content-Type": "application/json"},
    "requestBody": None,
    "queryParams": {"page": "1"},
    "responseHeaders": {"content-type": "application/json"},
    "responseBody": {"id": 1},
}

# §12.2(c): beta.83+ — lower-case enums, JSON text fields, a null body as the text "null".
BETA83_BODY: dict[str, Any] = {
    "domainUrl": "https://api.example.com",
    "pathnameUrl": "/v1/users",
    "status": 200,
    "protocol": "https",
    "method": "get",
    "trafficUserId": None,
    "elapsedTime": 123.456,
    "requestHeaders": '{"Authorization":"Bearer abc","Content-Type":"application/json"}',
    "requestBody": "null",
    "queryParams": '{"page":"1"}',
    "responseHeaders": '{"content-type":"application/json"}',
    "responseBody": '{"id":1}',
}

# §3.7: the current server's strict format.
STRICT_BODY: dict[str, Any] = {
    "domainUrl": "https://api.example.com",
    "pathnameUrl": "/v1/users",
    "status": 201,
    "protocol": "https",
    "method": "post",
    "trafficUserId": None,
    "elapsedTime": 150,
    "requestHeaders": json.dumps({"content-type": "application/json"}),
    "requestBody": json.dumps({"name": "Jane"}),
    "queryParams": "{}",
    "responseHeaders": json.dumps({"content-type": "application/json"}),
    "responseBody": json.dumps({"id": 2, "name": "Jane"}),
}


def body(base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(base or BETA72_BODY)
    result.update(changes)
    return result


def create_source(
    client: TestClient, user: AUser, name: str = "Payments API", **extra: Any
) -> dict[str, Any]:
    response = client.post(
        "/traffic-source",
        json={"name": name, "trafficDomain": "https://api.payments.com", **extra},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def compose(
    client: TestClient, headers: dict[str, str], source_id: str, **changes: Any
) -> dict[str, Any]:
    response = client.post(
        f"/http-traffic-record/{source_id}", json=body(**changes), headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def ingest_key(client: TestClient, user: AUser, source_id: str, name: str = "collector") -> str:
    response = client.post(
        f"/traffic-source/{source_id}/ingest-keys", json={"name": name}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["key"]  # type: ignore[no-any-return]
