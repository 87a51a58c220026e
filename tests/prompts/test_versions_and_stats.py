"""LogHarbor additions: prompt versions and per-prompt score statistics."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from fixtures.prompts import MakeRow
from fixtures.users import AUser
from prompts.prompt_support import BAD_TOKEN, NO_PROMPT, TOKEN_INVALID, TOKEN_MISSING, assert_error

FORBIDDEN = "You do not have permission to access this resource."
MALFORMED = "The request is malformed or the prompt ID format is invalid."


def test_every_change_keeps_the_previous_version(
    client: TestClient, user: AUser, make_prompt: MakeRow
) -> None:
    prompt = make_prompt(user, title="Version one", content="v1 text", model="GPT-4o", tags=["a"])
    url = f"/prompts/{prompt['_id']}"
    v2 = client.patch(url, json={"content": "v2 text"}, headers=user.headers).json()
    v3 = client.patch(
        url, json={"title": "Version three", "model": "Claude"}, headers=user.headers
    ).json()
    assert (v2["version"], v3["version"]) == (2, 3)

    # Nothing changed: no new version, updatedAt untouched.
    assert client.patch(url, json={}, headers=user.headers).json() == v3
    same = client.patch(url, json={"content": "v2 text", "tags": ["a"]}, headers=user.headers)
    assert same.json() == v3

    response = client.get(f"{url}/versions", headers=user.headers)
    assert response.status_code == 200
    assert response.json() == [
        {
            "version": 1,
            "title": "Version one",
            "content": "v1 text",
            "model": "GPT-4o",
            "tags": ["a"],
            "createdAt": prompt["createdAt"],
            "current": False,
            "labels": [],
        },
        {
            "version": 2,
            "title": "Version one",
            "content": "v2 text",
            "model": "GPT-4o",
            "tags": ["a"],
            "createdAt": v2["updatedAt"],
            "current": False,
            "labels": [],
        },
        {
            "version": 3,
            "title": "Version three",
            "content": "v2 text",
            "model": "Claude",
            "tags": ["a"],
            "createdAt": v3["updatedAt"],
            "current": True,
            "labels": [],
        },
    ]
    paged = client.get(f"{url}/versions?page=2&pageLimit=2", headers=user.headers).json()
    assert [v["version"] for v in paged["data"]] == [3]
    assert paged["meta"] == {"page": 2, "pageLimit": 2, "totalItems": 3}


def test_a_new_prompt_has_one_current_version(
    client: TestClient, user: AUser, make_prompt: MakeRow
) -> None:
    prompt = make_prompt(user)
    versions = client.get(f"/prompts/{prompt['_id']}/versions", headers=user.headers).json()
    assert [(v["version"], v["current"], v["createdAt"]) for v in versions] == [
        (1, True, prompt["createdAt"])
    ]


def test_stats_count_and_average_scores_per_model_and_version(
    client: TestClient, user: AUser, make_prompt: MakeRow, make_log: MakeRow
) -> None:
    prompt = make_prompt(user)
    pid = prompt["_id"]
    empty = client.get(f"/prompts/{pid}/stats", headers=user.headers)
    assert empty.status_code == 200
    zeros = {str(s): 0 for s in range(11)}
    assert empty.json() == {
        "promptId": pid,
        "logCount": 0,
        "scoredCount": 0,
        "averageScore": None,
        "scoreDistribution": zeros,
        "byModel": [],
        "byVersion": [],
    }

    make_log(user, pid, modelUsed="Claude", score=8)
    make_log(user, pid, modelUsed="Claude", score=6)
    make_log(user, pid, modelUsed="Claude")
    client.patch(f"/prompts/{pid}", json={"content": "Improved"}, headers=user.headers)
    make_log(user, pid, modelUsed="GPT-4o", score=10)
    make_log(user, pid, modelUsed="Claude", score=0)
    make_log(user, make_prompt(user)["_id"], modelUsed="Claude", score=1)  # another prompt

    stats = client.get(f"/prompts/{pid}/stats", headers=user.headers).json()
    assert stats["logCount"] == 5
    assert stats["scoredCount"] == 4
    assert stats["averageScore"] == 6.0
    assert stats["scoreDistribution"] == {**zeros, "0": 1, "6": 1, "8": 1, "10": 1}
    assert stats["byModel"] == [
        {
            "modelUsed": "Claude",
            "logCount": 4,
            "scoredCount": 3,
            "averageScore": 4.67,
            "scoreDistribution": {**zeros, "0": 1, "6": 1, "8": 1},
        },
        {
            "modelUsed": "GPT-4o",
            "logCount": 1,
            "scoredCount": 1,
            "averageScore": 10.0,
            "scoreDistribution": {**zeros, "10": 1},
        },
    ]
    assert [(v["promptVersion"], v["logCount"], v["averageScore"]) for v in stats["byVersion"]] == [
        (1, 3, 7.0),
        (2, 2, 5.0),
    ]


def test_versions_and_stats_errors(
    client: TestClient, make_user: Callable[..., AUser], make_prompt: MakeRow
) -> None:
    alice, bob = make_user(), make_user()
    prompt = make_prompt(alice)
    for tail in ("versions", "stats"):
        url = f"/prompts/{prompt['_id']}/{tail}"
        assert_error(client.get(url, headers=bob.headers), 403, FORBIDDEN)
        assert_error(client.get(f"/prompts/prompt3/{tail}", headers=alice.headers), 404, NO_PROMPT)
        bad = client.get(f"/prompts/invalid_prompt_id/{tail}", headers=alice.headers)
        assert_error(bad, 400, MALFORMED)
        assert_error(client.get(url), 401, TOKEN_MISSING)
        assert_error(client.get(url, headers=BAD_TOKEN), 401, TOKEN_INVALID)
