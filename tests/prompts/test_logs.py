"""Logs: the seed page's contract, listing, filtering by prompt, deleting (§1.8-1.11)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from fixtures.prompts import MakeRow
from fixtures.users import AUser
from prompts.prompt_support import (
    BAD_TOKEN,
    FIELDS_INVALID,
    LOG_KEYS,
    MEDIA_TYPE,
    PARAMS_INVALID,
    TOKEN_INVALID,
    TOKEN_MISSING,
    assert_error,
    raw_json,
)

# seeds/promptcrafter-create-log.md, request body as written.
SEED_REQUEST = {
    "promptId": "prompt3",
    "output": "Ready to Upgrade? Discover the Future of Tech.",
    "notes": "Engaging and clear subject line.",
    "modelUsed": "Claude",
    "score": 7,
}
NOT_ACCESSIBLE = "Prompt ID does not exist or is not accessible."
FILTER_TOKEN = "Authentication token missing or invalid."
FILTER_NOT_FOUND = "No logs found for the specified prompt ID."
FILTER_MALFORMED = "`promptId` missing or malformed"


def test_the_seed_request_creates_the_seed_response(
    client: TestClient, user: AUser, make_prompt: MakeRow
) -> None:
    # As written, prompt3 is a well-formed id that names no prompt of ours.
    assert_error(client.post("/logs", json=SEED_REQUEST, headers=user.headers), 404, NOT_ACCESSIBLE)

    prompt = make_prompt(user, title="Upgrade email", content="Write a subject line")
    request = {**SEED_REQUEST, "promptId": prompt["_id"]}
    response = client.post("/logs", json=request, headers=user.headers)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    # The seed response's keys, in its order; LogHarbor's promptVersion follows them.
    assert list(body) == [*LOG_KEYS, "promptVersion"]
    assert re.fullmatch(r"log\d{30,39}", body["_id"])
    assert {k: body[k] for k in request} == request
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["createdAt"])
    assert body["promptVersion"] == 1
    assert client.get("/logs", headers=user.headers).json() == [body]


def test_optional_fields_are_omitted_not_null(
    client: TestClient, user: AUser, make_prompt: MakeRow
) -> None:
    prompt = make_prompt(user)
    bare = {"promptId": prompt["_id"], "output": "", "modelUsed": "Claude"}
    response = client.post("/logs", json=bare, headers=user.headers)
    assert response.status_code == 201
    assert list(response.json()) == [
        "_id",
        "promptId",
        "output",
        "modelUsed",
        "createdAt",
        "promptVersion",
    ]
    nulls = client.post("/logs", json={**bare, "notes": None, "score": None}, headers=user.headers)
    assert "notes" not in nulls.json()
    assert "score" not in nulls.json()
    zero = client.post("/logs", json={**bare, "score": 0}, headers=user.headers)
    assert zero.json()["score"] == 0
    listed = client.get("/logs", headers=user.headers).json()
    assert [("score" in item, "notes" in item) for item in listed] == [(False, False)] * 2 + [
        (True, False)
    ]


def test_model_is_accepted_as_an_alias_of_model_used(
    client: TestClient, user: AUser, make_prompt: MakeRow
) -> None:
    prompt = make_prompt(user)
    openapi_style = {"promptId": prompt["_id"], "output": "x", "model": "Grok-3 Beta"}
    response = client.post("/logs", json=openapi_style, headers=user.headers)
    assert response.status_code == 201
    assert response.json()["modelUsed"] == "Grok-3 Beta"
    assert "model" not in response.json()
    both = client.post("/logs", json={**openapi_style, "modelUsed": "Claude"}, headers=user.headers)
    assert both.json()["modelUsed"] == "Claude"


def test_invalid_logs_are_refused_and_nothing_is_saved(
    client: TestClient, make_user: Callable[..., AUser], make_prompt: MakeRow
) -> None:
    alice, bob = make_user(), make_user()
    prompt = make_prompt(alice)
    good: dict[str, Any] = {**SEED_REQUEST, "promptId": prompt["_id"]}
    invalid = [
        {k: v for k, v in good.items() if k != "promptId"},
        {k: v for k, v in good.items() if k != "output"},
        {k: v for k, v in good.items() if k != "modelUsed"},
        {**good, "promptId": ""},
        {**good, "promptId": 3},
        {**good, "output": None},
        {**good, "modelUsed": ""},
        {**good, "modelUsed": "m" * 201},
        {**good, "notes": 5},
        {**good, "score": 11},
        {**good, "score": -1},
        {**good, "score": 9.5},
        {**good, "score": "7"},
        {**good, "score": True},
        {**good, "output": "a\u0000b"},
        {**good, "promptVersion": 0},
        {**good, "promptVersion": 2},
    ]
    for body in invalid:
        assert_error(client.post("/logs", json=body, headers=alice.headers), 400, FIELDS_INVALID)
    broken = raw_json(b'{"promptId": "prompt3", "output": }', alice.headers)
    assert_error(client.post("/logs", **broken), 400, FIELDS_INVALID)

    # Any other string is an id that names nothing; another user's prompt is not accessible.
    for prompt_id in ("abc", "prompt3", "log1"):
        other = client.post("/logs", json={**good, "promptId": prompt_id}, headers=alice.headers)
        assert_error(other, 404, NOT_ACCESSIBLE)
    assert_error(client.post("/logs", json=good, headers=bob.headers), 404, NOT_ACCESSIBLE)

    assert_error(client.post("/logs", json=good), 401, TOKEN_MISSING)
    assert_error(client.post("/logs", json=good, headers=BAD_TOKEN), 401, TOKEN_INVALID)
    text = {**alice.headers, "Content-Type": "text/plain"}
    assert_error(client.post("/logs", content=b"output", headers=text), 415, MEDIA_TYPE)

    assert client.get("/logs", headers=alice.headers).json() == []
    assert client.get("/logs", headers=bob.headers).json() == []


def test_list_shows_the_logs_of_the_callers_prompts(
    client: TestClient, make_user: Callable[..., AUser], make_prompt: MakeRow, make_log: MakeRow
) -> None:
    alice, bob = make_user(), make_user()
    assert client.get("/logs", headers=alice.headers).json() == []
    first, second = make_prompt(alice), make_prompt(alice)
    made = [
        make_log(alice, first["_id"], output="one"),
        make_log(alice, second["_id"], output="two"),
        make_log(alice, first["_id"], output="three"),
    ]
    make_log(bob, make_prompt(bob)["_id"])

    assert client.get("/logs", headers=alice.headers).json() == made
    paged = client.get("/logs?page=1&pageLimit=2", headers=alice.headers).json()
    assert paged == {"data": made[:2], "meta": {"page": 1, "pageLimit": 2, "totalItems": 3}}

    assert_error(client.get("/logs?limit=50", headers=alice.headers), 400, PARAMS_INVALID)
    assert_error(client.get("/logs?pageLimit=-1", headers=alice.headers), 400, PARAMS_INVALID)
    assert_error(client.get("/logs"), 401, "Authentication required.")
    assert_error(
        client.get("/logs", headers=BAD_TOKEN),
        401,
        "Authentication token is invalid or has expired.",
    )


def test_logs_of_one_prompt(
    client: TestClient, make_user: Callable[..., AUser], make_prompt: MakeRow, make_log: MakeRow
) -> None:
    alice, bob = make_user(), make_user()
    prompt, other, silent = make_prompt(alice), make_prompt(alice), make_prompt(alice)
    mine = [make_log(alice, prompt["_id"], score=s) for s in (3, 9)]
    make_log(alice, other["_id"])

    for path in ("/logs", "/logs-by-prompt"):
        response = client.get(f"{path}?promptId={prompt['_id']}", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == mine
        paged = client.get(
            f"{path}?promptId={prompt['_id']}&pageLimit=1&page=2", headers=alice.headers
        )
        assert paged.json() == {
            "data": mine[1:],
            "meta": {"page": 2, "pageLimit": 1, "totalItems": 2},
        }

        def get(query: str, headers: dict[str, str] = alice.headers, p: str = path) -> Any:
            return client.get(f"{p}?{query}", headers=headers)

        assert_error(get("promptId="), 400, FILTER_MALFORMED)
        assert_error(get("promptId=invalid_prompt_id"), 400, FILTER_MALFORMED)
        assert_error(get("promptId=prompt3"), 404, FILTER_NOT_FOUND)
        # Documented: a prompt with no logs answers 404 as well.
        assert_error(get(f"promptId={silent['_id']}"), 404, FILTER_NOT_FOUND)
        assert_error(
            get(f"promptId={prompt['_id']}", bob.headers),
            403,
            "User is not authorized to view logs for this prompt.",
        )
        assert_error(get(f"promptId={prompt['_id']}", {}), 401, FILTER_TOKEN)
        assert_error(get(f"promptId={prompt['_id']}", BAD_TOKEN), 401, FILTER_TOKEN)
        assert_error(get(f"promptId={prompt['_id']}&limit=5"), 400, PARAMS_INVALID)

    missing = client.get("/logs-by-prompt", headers=alice.headers)
    assert_error(missing, 400, FILTER_MALFORMED)


def test_delete_a_log(
    client: TestClient, make_user: Callable[..., AUser], make_prompt: MakeRow, make_log: MakeRow
) -> None:
    alice, bob = make_user(), make_user()
    prompt = make_prompt(alice)
    doomed, kept = make_log(alice, prompt["_id"]), make_log(alice, prompt["_id"])
    url = f"/logs/{doomed['_id']}"

    assert_error(
        client.delete("/logs/invalid_log_id", headers=alice.headers),
        400,
        "The request is malformed or the log ID format is invalid.",
    )
    foreign = client.delete(url, headers=bob.headers)
    assert_error(foreign, 403, "Log does not belong to the authenticated user.")
    assert_error(client.delete(url), 401, TOKEN_MISSING)
    assert_error(client.delete(url, headers=BAD_TOKEN), 401, TOKEN_INVALID)
    assert client.get("/logs", headers=alice.headers).json() == [doomed, kept]

    response = client.delete(url, headers=alice.headers)
    assert (response.status_code, response.content) == (204, b"")
    assert client.get("/logs", headers=alice.headers).json() == [kept]
    again = client.delete(url, headers=alice.headers)
    assert_error(again, 404, "No log found with the specified ID.")
    assert_error(
        client.delete("/logs/log3", headers=alice.headers),
        404,
        "No log found with the specified ID.",
    )


def test_a_log_records_the_prompt_version(
    client: TestClient, user: AUser, make_prompt: MakeRow, make_log: MakeRow
) -> None:
    prompt = make_prompt(user)
    assert make_log(user, prompt["_id"])["promptVersion"] == 1
    client.patch(f"/prompts/{prompt['_id']}", json={"content": "Better"}, headers=user.headers)
    assert make_log(user, prompt["_id"])["promptVersion"] == 2
    # An output produced before the edit can still be logged against the version that made it.
    assert make_log(user, prompt["_id"], promptVersion=1)["promptVersion"] == 1
