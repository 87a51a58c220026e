"""Bad input of every shape gets a clear 4xx in the right envelope, never a 500."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fixtures.users import AUser


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json()["error"] == "Route not found"
    assert response.json()["name"] == "NotFound"


def test_wrong_method_is_405(client: TestClient) -> None:
    response = client.delete("/auth/login")
    assert response.status_code == 405


def test_oversized_body_is_413(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    big = b'{"email": "' + b"a" * (settings.max_request_bytes + 10) + b'"}'
    response = client.post("/auth/login", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["name"] == "PayloadTooLarge"


def test_invalid_utf8_body_is_400(client: TestClient, user: AUser) -> None:
    response = client.put(
        f"/user/{user.id}",
        content=b'{"name": "\xff\xfe"}',
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["name"] == "BadRequest"


def test_wrong_content_type_is_415_in_arkyn_envelope(client: TestClient, user: AUser) -> None:
    response = client.put(
        f"/user/{user.id}",
        content=b"name=x",
        headers={**user.headers, "Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert response.json()["name"] == "UnsupportedMediaType"


def test_wrong_types_name_the_field(client: TestClient, user: AUser) -> None:
    response = client.put(f"/user/{user.id}", json={"name": 42, "utc": "x"}, headers=user.headers)
    assert response.status_code == 400
    body = response.json()
    assert body["name"] == "BadRequest"
    assert set(body["fieldErrors"]) == {"name", "utc"}


def test_a_json_array_where_an_object_is_expected(client: TestClient) -> None:
    response = client.post("/user/auth", json=[1, 2])
    assert response.status_code == 400


def test_health_and_docs(client: TestClient) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["database"] == "ok"
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/auth/signup" in spec["paths"] and "/user/auth" in spec["paths"]
