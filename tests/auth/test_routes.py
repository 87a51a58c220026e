"""Accounts for both families: signup/login (PromptCrafter), /user/auth, PUT /user (Arkyn)."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
from fastapi.testclient import TestClient

from fixtures.users import AUser, bearer

SIGNUP = {"name": "Jane", "email": "Jane@Example.com", "password": "password123"}


def test_signup_then_login_returns_a_working_token(client: TestClient) -> None:
    response = client.post("/auth/signup", json=SIGNUP)
    assert response.status_code == 201
    assert response.json() == {"message": "User account created successfully."}

    login = client.post(
        "/auth/login", json={"email": "jane@example.com", "password": "password123"}
    )
    assert login.status_code == 200
    token = login.json()["token"]
    assert set(login.json()) == {"token"}

    claims = jwt.decode(
        token, "test-secret-that-is-long-enough-for-hs256", algorithms=["HS256"], issuer="logharbor"
    )
    assert claims["sub"] == claims["id"]
    assert claims["exp"] > time.time()

    # The same token is accepted by the Arkyn family's authenticated routes.
    update = client.put(f"/user/{claims['sub']}", json={"name": "Jane D."}, headers=bearer(token))
    assert update.status_code == 200, update.text
    assert update.json()["name"] == "Jane D."


def test_signup_errors(client: TestClient) -> None:
    assert client.post("/auth/signup", json=SIGNUP).status_code == 201
    duplicate = client.post("/auth/signup", json={**SIGNUP, "email": "JANE@example.com"})
    assert duplicate.status_code == 409
    assert duplicate.json() == {"error": "Email already in use."}

    missing = client.post("/auth/signup", json={"name": "x", "email": "a@b.co"})
    assert missing.status_code == 400
    assert missing.json() == {"error": "Required fields are missing or invalid."}

    wrong_type = client.post("/auth/signup", json={**SIGNUP, "email": 5})
    assert wrong_type.json() == {"error": "Required fields are missing or invalid."}

    bad_email = client.post("/auth/signup", json={**SIGNUP, "email": "not-an-email"})
    assert bad_email.status_code == 400

    weak = client.post("/auth/signup", json={**SIGNUP, "email": "w@example.com", "password": "5"})
    assert weak.status_code == 400
    assert weak.json() == {"error": "The password does not meet the security requirements."}

    malformed = client.post(
        "/auth/signup", content=b'{"name": "x", }', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json() == {"error": "Required fields are missing or invalid."}

    not_json = client.post(
        "/auth/signup", content=b"name=x", headers={"Content-Type": "text/plain"}
    )
    assert not_json.status_code == 415
    assert not_json.json() == {"error": "Content-Type must be application/json"}


def test_login_failures_do_not_reveal_which_part_was_wrong(client: TestClient) -> None:
    client.post("/auth/signup", json=SIGNUP)
    wrong_password = client.post("/auth/login", json={"email": SIGNUP["email"], "password": "nope"})
    unknown_email = client.post("/auth/login", json={"email": "x@example.com", "password": "nope"})
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert (
        wrong_password.json() == unknown_email.json() == {"error": "Incorrect email or password."}
    )
    broken = client.post(
        "/auth/login",
        content=b'{"email": "a@b.co", }',
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 400


def test_arkyn_user_auth_shape_and_errors(client: TestClient) -> None:
    client.post("/auth/signup", json=SIGNUP)
    response = client.post(
        "/user/auth", json={"email": "jane@example.com", "password": "password123"}
    )
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["id", "name", "email", "utc", "createdAt", "updatedAt", "token"]
    assert "password" not in str(body).lower()
    assert body["createdAt"].endswith("Z") and len(body["createdAt"]) == 24

    bad = client.post("/user/auth", json={"email": "jane@example.com", "password": "wrong-pass"})
    assert bad.status_code == 401
    assert bad.json()["name"] == "Unauthorized"

    invalid = client.post("/user/auth", json={"email": "nope", "password": 3})
    assert invalid.status_code == 400
    assert invalid.json()["name"] == "BadRequest"
    assert set(invalid.json()["fieldErrors"]) == {"password"}


def test_a_user_may_update_only_themselves(
    make_user: Callable[..., AUser], client: TestClient
) -> None:
    alice, bob = make_user(), make_user()
    forbidden = client.put(f"/user/{bob.id}", json={"name": "hacked"}, headers=alice.headers)
    assert forbidden.status_code == 403
    assert forbidden.json()["name"] == "Forbidden"

    ok = client.put(f"/user/{alice.id}", json={"utc": 0, "name": " Alice "}, headers=alice.headers)
    assert ok.status_code == 200
    assert ok.json()["utc"] == 0 and ok.json()["name"] == "Alice"

    out_of_range = client.put(f"/user/{alice.id}", json={"utc": 99}, headers=alice.headers)
    assert out_of_range.status_code == 400
    assert "utc" in out_of_range.json()["fieldErrors"]

    not_an_id = client.put("/user/123", json={"name": "x"}, headers=alice.headers)
    assert not_an_id.status_code == 400


def test_token_errors_per_family(user: AUser, client: TestClient) -> None:
    # Arkyn: missing header is 400, a bad token 401.
    missing = client.put(f"/user/{user.id}", json={"name": "x"})
    assert missing.status_code == 400
    assert missing.json() == {"name": "BadRequest", "message": "No token provided"}
    bad = client.put(f"/user/{user.id}", json={"name": "x"}, headers=bearer("garbage"))
    assert bad.status_code == 401
    assert bad.json() == {"name": "Unauthorized", "message": "Invalid token"}

    expired = jwt.encode(
        {"sub": user.id, "id": user.id, "iss": "logharbor", "iat": 1, "exp": 2},
        "test-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
    )
    assert client.put(f"/user/{user.id}", json={}, headers=bearer(expired)).status_code == 401
    forged = jwt.encode(
        {"sub": user.id, "iss": "logharbor", "iat": int(time.time()), "exp": int(time.time()) + 99},
        "another-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
    )
    assert client.put(f"/user/{user.id}", json={}, headers=bearer(forged)).status_code == 401


def test_auth_is_checked_before_the_body(client: TestClient, user: AUser) -> None:
    broken = client.put(
        f"/user/{user.id}", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["message"] == "No token provided"


def test_signup_can_be_disabled(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from logharbor.app import create_app

    closed = create_app(settings.model_copy(update={"allow_signup": False}))
    with TestClient(closed) as client:
        response = client.post("/auth/signup", json=SIGNUP)
    assert response.status_code == 403
    assert "disabled" in response.json()["error"]
