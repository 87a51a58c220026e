"""Prompts CRUD: documented shapes, statuses and sentences (promptcrafter-original.md §1.3-1.7)."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from fixtures.prompts import MakeRow
from fixtures.users import AUser
from logharbor.common.ids import from_prefixed
from prompts.prompt_support import (
    BAD_TOKEN,
    FIELDS_INVALID,
    MEDIA_TYPE,
    NO_PROMPT,
    PARAMS_INVALID,
    PROMPT_KEYS,
    TOKEN_INVALID,
    TOKEN_MISSING,
    assert_error,
    raw_json,
)

NEW = {
    "title": "Product review summary",
    "content": "Summarize this review in one sentence.",
    "model": "GPT-4o",
    "tags": ["reviews", "summaries"],
}


def test_create_returns_the_documented_prompt(client: TestClient, user: AUser) -> None:
    sneaky = {**NEW, "_id": "prompt1", "ownerId": "user1", "createdAt": "2000-01-01T00:00:00Z"}
    response = client.post("/prompts", json=sneaky, headers=user.headers)
    assert response.status_code == 201
    body = response.json()
    assert list(body) == [*PROMPT_KEYS, "version"]
    assert re.fullmatch(r"prompt\d{30,39}", body["_id"])
    assert from_prefixed("user", body["ownerId"]) == user.id
    assert {k: body[k] for k in ("title", "content", "model", "tags")} == NEW
    assert body["createdAt"] == body["updatedAt"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["createdAt"])
    assert body["createdAt"] > "2020"
    assert body["version"] == 1

    fetched = client.get(f"/prompts/{body['_id']}", headers=user.headers)
    assert fetched.status_code == 200
    assert fetched.json() == body


def test_tags_default_to_an_empty_list(client: TestClient, user: AUser) -> None:
    body = {k: v for k, v in NEW.items() if k != "tags"}
    response = client.post("/prompts", json=body, headers=user.headers)
    assert response.status_code == 201
    assert response.json()["tags"] == []


def test_invalid_prompts_are_refused_and_nothing_is_saved(client: TestClient, user: AUser) -> None:
    invalid = [
        {k: v for k, v in NEW.items() if k != "title"},
        {k: v for k, v in NEW.items() if k != "content"},
        {k: v for k, v in NEW.items() if k != "model"},
        {**NEW, "title": "ab"},
        {**NEW, "title": "x" * 101},
        {**NEW, "title": "   "},
        {**NEW, "title": 12345},
        {**NEW, "content": None},
        {**NEW, "content": ""},
        {**NEW, "model": ["GPT-4o"]},
        {**NEW, "tags": "reviews"},
        {**NEW, "tags": ["ok", 5]},
        {**NEW, "content": "nul \u0000 byte"},
        [NEW],
        "just a string",
    ]
    for body in invalid:
        response = client.post("/prompts", json=body, headers=user.headers)
        assert_error(response, 400, FIELDS_INVALID)

    malformed = client.post("/prompts", **raw_json(b'{"title": "abc", }', user.headers))
    assert_error(malformed, 400, FIELDS_INVALID)
    surrogate = b'{"title": "lone \\ud800 half", "content": "c", "model": "m"}'
    assert_error(client.post("/prompts", **raw_json(surrogate, user.headers)), 400, FIELDS_INVALID)
    empty = client.post("/prompts", **raw_json(b"", user.headers))
    assert_error(empty, 400, FIELDS_INVALID)

    assert client.get("/prompts", headers=user.headers).json() == []


def test_the_title_limits_count_characters(client: TestClient, user: AUser) -> None:
    for title in ("abc", "é" * 100, "日本語"):
        response = client.post("/prompts", json={**NEW, "title": title}, headers=user.headers)
        assert response.status_code == 201, title


def test_token_and_content_type_come_before_the_body(client: TestClient, user: AUser) -> None:
    assert_error(client.post("/prompts", json=NEW), 401, TOKEN_MISSING)
    assert_error(client.post("/prompts", json=NEW, headers=BAD_TOKEN), 401, TOKEN_INVALID)
    null_token = {"Authorization": "Bearer null"}
    assert_error(client.post("/prompts", json=NEW, headers=null_token), 401, TOKEN_INVALID)
    # No token and a broken body: the token is what is reported.
    assert_error(client.post("/prompts", content=b"{", headers={}), 401, TOKEN_MISSING)

    text = {**user.headers, "Content-Type": "text/plain"}
    assert_error(client.post("/prompts", content=b"title=x", headers=text), 415, MEDIA_TYPE)
    no_type = client.post("/prompts", content=b'{"title": "abc"}', headers=user.headers)
    assert_error(no_type, 415, MEDIA_TYPE)
    with_charset = {**user.headers, "Content-Type": "application/json; charset=utf-8"}
    ok = client.post(
        "/prompts", content=b'{"title":"abc","content":"c","model":"m"}', headers=with_charset
    )
    assert ok.status_code == 201


def test_list_shows_only_the_callers_prompts_in_insertion_order(
    client: TestClient, make_user: Callable[..., AUser], make_prompt: MakeRow
) -> None:
    alice, bob = make_user(), make_user()
    assert client.get("/prompts", headers=alice.headers).json() == []
    first = make_prompt(alice, title="First prompt")
    make_prompt(bob, title="Bob's prompt")
    second = make_prompt(alice, title="Second prompt")

    response = client.get("/prompts", headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == [first, second]


def test_list_errors(client: TestClient, user: AUser) -> None:
    assert_error(client.get("/prompts?limit=50", headers=user.headers), 400, PARAMS_INVALID)
    assert_error(client.get("/prompts?page=0", headers=user.headers), 400, PARAMS_INVALID)
    assert_error(client.get("/prompts?page=x", headers=user.headers), 400, PARAMS_INVALID)
    assert_error(client.get("/prompts?page=1&page=2", headers=user.headers), 400, PARAMS_INVALID)
    # GET /prompts documents its own 401 sentences.
    assert_error(client.get("/prompts"), 401, "Authentication required.")
    assert_error(
        client.get("/prompts", headers=BAD_TOKEN),
        401,
        "Authentication token is invalid or has expired.",
    )


def test_list_pages_when_asked(client: TestClient, user: AUser, make_prompt: MakeRow) -> None:
    made = [make_prompt(user, title=f"Prompt number {i}") for i in range(5)]
    page = client.get("/prompts?page=2&pageLimit=2", headers=user.headers)
    assert page.status_code == 200
    assert page.json() == {"data": made[2:4], "meta": {"page": 2, "pageLimit": 2, "totalItems": 5}}
    only_limit = client.get("/prompts?pageLimit=3", headers=user.headers).json()
    assert only_limit["data"] == made[:3]
    beyond = client.get("/prompts?page=9&pageLimit=2", headers=user.headers).json()
    assert beyond == {"data": [], "meta": {"page": 9, "pageLimit": 2, "totalItems": 5}}


def test_get_errors(
    client: TestClient, make_user: Callable[..., AUser], make_prompt: MakeRow
) -> None:
    alice, bob = make_user(), make_user()
    prompt = make_prompt(alice)
    malformed = "The request is malformed or the prompt ID format is invalid."
    for bad in ("invalid_prompt_id", "104", "prompt", "prompt-1", "prompt1.5", "log1", "prompt٣"):
        assert_error(client.get(f"/prompts/{bad}", headers=alice.headers), 400, malformed)
    too_big = "prompt" + "9" * 39
    assert_error(client.get(f"/prompts/{too_big}", headers=alice.headers), 400, malformed)
    assert_error(client.get("/prompts/prompt3", headers=alice.headers), 404, NO_PROMPT)
    assert_error(
        client.get(f"/prompts/{prompt['_id']}", headers=bob.headers),
        403,
        "You do not have permission to access this resource.",
    )
    assert_error(client.get(f"/prompts/{prompt['_id']}"), 401, TOKEN_MISSING)
    assert_error(client.get("/prompts/invalid_prompt_id", headers=BAD_TOKEN), 401, TOKEN_INVALID)
    no_route = client.get("/prompts/a/b", headers=alice.headers)
    assert (no_route.status_code, no_route.json()["error"]) == (404, "Route not found")


def test_patch_changes_only_what_is_given(
    client: TestClient, user: AUser, make_prompt: MakeRow
) -> None:
    prompt = make_prompt(user, tags=["one"])
    url = f"/prompts/{prompt['_id']}"

    title_only = client.patch(url, json={"title": "A better title"}, headers=user.headers)
    assert title_only.status_code == 200
    body = title_only.json()
    assert list(body) == [*PROMPT_KEYS, "version"]
    assert body["title"] == "A better title"
    assert (body["content"], body["model"], body["tags"]) == (
        prompt["content"],
        prompt["model"],
        ["one"],
    )
    assert body["createdAt"] == prompt["createdAt"]
    assert body["updatedAt"] >= prompt["updatedAt"]

    both = client.patch(url, json={"content": "New text", "tags": ["x", "y"]}, headers=user.headers)
    assert both.json()["content"] == "New text"
    assert both.json()["tags"] == ["x", "y"]
    assert both.json()["title"] == "A better title"
    assert client.get(url, headers=user.headers).json() == both.json()

    unchanged = client.patch(url, json={}, headers=user.headers)
    assert unchanged.status_code == 200
    assert unchanged.json() == both.json()
    ignored = client.patch(url, json={"ownerId": "user1", "_id": "prompt9"}, headers=user.headers)
    assert ignored.json() == both.json()


def test_patch_errors_leave_the_prompt_alone(
    client: TestClient, make_user: Callable[..., AUser], make_prompt: MakeRow
) -> None:
    alice, bob = make_user(), make_user()
    prompt = make_prompt(alice)
    url = f"/prompts/{prompt['_id']}"
    invalid = "Submitted data is invalid."
    for body in (
        {"title": "a"},
        {"title": None},
        {"tags": None},
        {"tags": [1]},
        {"content": 5},
        {"model": ""},
        ["title"],
    ):
        assert_error(client.patch(url, json=body, headers=alice.headers), 400, invalid)
    broken = raw_json(b'{"title": "New title" "content": "x"}', alice.headers)
    assert_error(client.patch(url, **broken), 400, invalid)

    bad_id = client.patch(
        "/prompts/invalid_prompt_id", json={"title": "Fine"}, headers=alice.headers
    )
    assert_error(bad_id, 400, "The prompt ID format is invalid.")
    unknown = client.patch("/prompts/prompt3", json={"title": "Fine"}, headers=alice.headers)
    assert_error(unknown, 404, NO_PROMPT)
    foreign = client.patch(url, json={"title": "Mine now"}, headers=bob.headers)
    assert_error(foreign, 403, "Prompt does not belong to the authenticated user.")
    assert_error(client.patch(url, json={"title": "Fine"}), 401, TOKEN_MISSING)
    text = {**alice.headers, "Content-Type": "text/plain"}
    assert_error(client.patch(url, content=b"title", headers=text), 415, MEDIA_TYPE)

    assert client.get(url, headers=alice.headers).json() == prompt


def test_delete_removes_the_prompt_and_its_logs(
    client: TestClient, user: AUser, make_prompt: MakeRow, make_log: MakeRow
) -> None:
    doomed, kept = make_prompt(user, title="Doomed prompt"), make_prompt(user, title="Kept prompt")
    doomed_log = make_log(user, doomed["_id"])
    kept_log = make_log(user, kept["_id"])

    response = client.delete(f"/prompts/{doomed['_id']}", headers=user.headers)
    assert response.status_code == 204
    assert response.content == b""

    assert_error(client.get(f"/prompts/{doomed['_id']}", headers=user.headers), 404, NO_PROMPT)
    assert client.get("/logs", headers=user.headers).json() == [kept_log]
    gone = client.delete(f"/logs/{doomed_log['_id']}", headers=user.headers)
    assert_error(gone, 404, "No log found with the specified ID.")
    assert [p["_id"] for p in client.get("/prompts", headers=user.headers).json()] == [kept["_id"]]
    assert client.get("/search?q=doomed", headers=user.headers).json() == []


def test_delete_errors(
    client: TestClient, make_user: Callable[..., AUser], make_prompt: MakeRow
) -> None:
    alice, bob = make_user(), make_user()
    prompt = make_prompt(alice)
    url = f"/prompts/{prompt['_id']}"
    bad = client.delete("/prompts/invalid_prompt_id", headers=alice.headers)
    assert_error(bad, 400, "The prompt ID format is invalid.")
    assert_error(client.delete("/prompts/prompt3", headers=alice.headers), 404, NO_PROMPT)
    foreign = client.delete(url, headers=bob.headers)
    assert_error(foreign, 403, "Prompt does not belong to the authenticated user.")
    assert_error(client.delete(url), 401, TOKEN_MISSING)
    assert_error(client.delete(url, headers=BAD_TOKEN), 401, TOKEN_INVALID)
    assert client.get(url, headers=alice.headers).status_code == 200
