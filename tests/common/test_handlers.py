"""HTTP done right for every API family: 405 names every method of the path, no slash redirects."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PROMPTCRAFTER = re.compile(r"^/(auth/|prompts|logs|search)")


def _api_paths(client: TestClient) -> dict[str, set[str]]:
    """Every documented API path, its parameters filled in, with its documented methods."""
    paths: dict[str, set[str]] = {}
    for template, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        path = re.sub(r"\{[^}]+\}", "x1", template)
        paths.setdefault(path, set()).update(m.upper() for m in operations)
    return paths


def _assert_envelope(path: str, body: dict[str, Any], name: str, message: str) -> None:
    if PROMPTCRAFTER.match(path):
        assert body == {"error": message}, (path, body)
    else:
        assert body == {"name": name, "message": message}, (path, body)


def test_405_allow_lists_every_method_of_the_path(client: TestClient) -> None:
    checked = 0
    for path, documented in _api_paths(client).items():
        for refused in (m for m in METHODS if m not in documented):
            response = client.request(refused, path)
            if response.status_code != 405:
                # Another template serves it (GET /http-traffic-record/x1/batch is a record).
                continue
            _assert_envelope(path, response.json(), "MethodNotAllowed", "Method not allowed")
            allowed = set(response.headers["allow"].split(", "))
            assert documented <= allowed, (path, allowed)
            assert refused not in allowed
            for method in allowed:  # and nothing it lists is refused in turn
                assert client.request(method, path).status_code != 405, (path, method)
            checked += 1
            break
    assert checked >= 40


def test_405_on_the_paths_that_named_one_method(client: TestClient) -> None:
    assert client.put("/logs").headers["allow"] == "GET, POST"
    assert client.put("/prompts").headers["allow"] == "GET, POST"
    assert client.put("/prompts/prompt1").headers["allow"] == "DELETE, GET, PATCH"
    assert client.patch("/webhooks/x1").headers["allow"] == "DELETE, GET, POST, PUT"
    assert client.patch("/traffic-sources").headers["allow"] == "GET, POST"  # an alias


def test_a_trailing_slash_is_a_404_never_a_redirect(client: TestClient) -> None:
    for path, documented in _api_paths(client).items():
        for method in documented:
            response = client.request(method, path + "/", follow_redirects=False)
            assert response.status_code == 404, (method, path, response.status_code)
            _assert_envelope(path, response.json(), "NotFound", "Route not found")
    for alias in ("/traffic-sources/", "/webhook/x1/", "/http-traffics/x1/"):
        response = client.get(alias, follow_redirects=False)
        assert response.status_code == 404, alias
        assert response.json()["name"] == "NotFound"
