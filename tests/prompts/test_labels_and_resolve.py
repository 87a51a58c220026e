"""LogHarbor additions: version labels (``/prompts/:id/labels/:label``) and what apps fetch
their prompts by (``GET /prompts/resolve``), with a user token or an ingest key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from fixtures.prompts import MakeRow
from fixtures.users import AUser, bearer
from prompts.prompt_support import assert_error

LABEL_INVALID = "A label is 1 to 50 characters of a-z, 0-9, _ and -."
NO_VERSION = "The prompt has no such version."
NO_LABEL = "The prompt has no such label."
NO_PROMPT = "No prompt found with the specified ID."
NOT_YOURS = "Prompt does not belong to the authenticated user."
RESOLVE_INVALID = "Name the prompt by exactly one of `id` and `title`; `label` is optional."


def _three_versions(client: TestClient, user: AUser, make_prompt: MakeRow) -> dict[str, Any]:
    prompt = make_prompt(user, title="Summarize a ticket", content="v1 {ticket}")
    for text in ("v2 {ticket}", "v3 {ticket}"):
        changed = client.patch(
            f"/prompts/{prompt['_id']}", json={"content": text}, headers=user.headers
        )
        assert changed.status_code == 200, changed.text
    return prompt


def _label_rows(client: TestClient) -> int:
    from sqlalchemy import func, select

    from logharbor.db.tables import prompt_labels

    with client.app.state.db.read() as conn:  # type: ignore[attr-defined]
        count: int = conn.execute(select(func.count()).select_from(prompt_labels)).scalar_one()
    return count


def _labels(client: TestClient, user: AUser, prompt_id: str) -> dict[int, list[str]]:
    versions = client.get(f"/prompts/{prompt_id}/versions", headers=user.headers).json()
    return {v["version"]: v["labels"] for v in versions}


def test_a_label_is_set_moved_and_deleted(
    client: TestClient, user: AUser, make_prompt: MakeRow
) -> None:
    prompt = _three_versions(client, user, make_prompt)
    url = f"/prompts/{prompt['_id']}/labels"
    first = client.put(f"{url}/production", json={"version": 1}, headers=user.headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"promptId": prompt["_id"], "label": "production", "version": 1}
    assert client.put(f"{url}/staging", json={"version": 3}, headers=user.headers).is_success
    assert _labels(client, user, prompt["_id"]) == {1: ["production"], 2: [], 3: ["staging"]}

    moved = client.put(f"{url}/production", json={"version": 3}, headers=user.headers)
    assert moved.json()["version"] == 3
    assert _labels(client, user, prompt["_id"]) == {1: [], 2: [], 3: ["production", "staging"]}

    assert client.delete(f"{url}/staging", headers=user.headers).status_code == 204
    assert _labels(client, user, prompt["_id"]) == {1: [], 2: [], 3: ["production"]}
    assert_error(client.delete(f"{url}/staging", headers=user.headers), 404, NO_LABEL)


def test_bad_labels_versions_and_other_owners_are_refused(
    client: TestClient,
    user: AUser,
    make_user: Callable[..., AUser],
    make_prompt: MakeRow,
) -> None:
    prompt = _three_versions(client, user, make_prompt)
    url = f"/prompts/{prompt['_id']}/labels"
    for label in ("Production", "a" * 51, "with space", "ünï"):
        response = client.put(f"{url}/{label}", json={"version": 1}, headers=user.headers)
        assert_error(response, 400, LABEL_INVALID)
    assert_error(
        client.put(f"{url}/prod", json={"version": 4}, headers=user.headers), 400, NO_VERSION
    )
    for body in ({"version": 0}, {"version": "1"}, {}, {"version": None}):
        response = client.put(f"{url}/prod", json=body, headers=user.headers)
        assert response.status_code == 400, (body, response.text)
    other = make_user()
    assert_error(
        client.put(f"{url}/prod", json={"version": 1}, headers=other.headers), 403, NOT_YOURS
    )
    assert_error(client.delete(f"{url}/prod", headers=other.headers), 403, NOT_YOURS)
    missing = "/prompts/prompt123456789/labels/prod"
    assert_error(client.put(missing, json={"version": 1}, headers=user.headers), 404, NO_PROMPT)
    bad_id = client.put("/prompts/nope/labels/prod", json={"version": 1}, headers=user.headers)
    assert bad_id.status_code == 400
    assert _label_rows(client) == 0


def test_labels_go_with_their_prompt(client: TestClient, user: AUser, make_prompt: MakeRow) -> None:
    prompt = make_prompt(user)
    client.put(f"/prompts/{prompt['_id']}/labels/prod", json={"version": 1}, headers=user.headers)
    assert _label_rows(client) == 1
    assert client.delete(f"/prompts/{prompt['_id']}", headers=user.headers).status_code == 204
    assert _label_rows(client) == 0


def test_resolve_by_id_title_and_label(
    client: TestClient, user: AUser, make_prompt: MakeRow
) -> None:
    prompt = _three_versions(client, user, make_prompt)
    client.put(
        f"/prompts/{prompt['_id']}/labels/production", json={"version": 2}, headers=user.headers
    )

    current = client.get("/prompts/resolve", params={"id": prompt["_id"]}, headers=user.headers)
    assert current.status_code == 200, current.text
    body = current.json()
    assert (body["_id"], body["version"], body["content"], body["labels"]) == (
        prompt["_id"],
        3,
        "v3 {ticket}",
        [],
    )
    assert (body["title"], body["model"]) == ("Summarize a ticket", "GPT-4o")

    by_title = client.get(
        "/prompts/resolve",
        params={"title": "Summarize a ticket", "label": "production"},
        headers=user.headers,
    ).json()
    assert (by_title["version"], by_title["content"], by_title["labels"]) == (
        2,
        "v2 {ticket}",
        ["production"],
    )
    assert by_title["etag"] != body["etag"]

    # A re-fetch of an unchanged version is a 304; after a move the new version comes.
    params = {"id": prompt["_id"], "label": "production"}
    etag = client.get("/prompts/resolve", params=params, headers=user.headers).headers["etag"]
    assert etag == f'"{by_title["etag"]}"'
    again = client.get(
        "/prompts/resolve", params=params, headers={**user.headers, "If-None-Match": etag}
    )
    assert (again.status_code, again.content) == (304, b"")
    client.put(
        f"/prompts/{prompt['_id']}/labels/production", json={"version": 3}, headers=user.headers
    )
    moved = client.get(
        "/prompts/resolve", params=params, headers={**user.headers, "If-None-Match": etag}
    )
    assert (moved.status_code, moved.json()["version"]) == (200, 3)

    def resolve(**params: str) -> Any:
        return client.get("/prompts/resolve", params=params, headers=user.headers)

    assert_error(resolve(id=prompt["_id"], label="staging"), 404, NO_LABEL)
    assert_error(resolve(title="Summarize a ticket "), 404, NO_PROMPT)
    assert_error(resolve(title="Summarize", id=prompt["_id"]), 400, RESOLVE_INVALID)
    assert_error(resolve(), 400, RESOLVE_INVALID)
    assert_error(resolve(id=prompt["_id"], label="Prod!"), 400, LABEL_INVALID)
    assert resolve(id="nope").status_code == 400
    assert resolve(id=prompt["_id"], extra="1").status_code == 400


def test_resolve_with_an_ingest_key_reads_its_owners_prompts_only(
    client: TestClient,
    user: AUser,
    make_user: Callable[..., AUser],
    make_prompt: MakeRow,
) -> None:
    prompt = make_prompt(user, title="Owner's prompt")
    other = make_user()
    theirs = make_prompt(other, title="Their prompt")
    source = client.post(
        "/traffic-source",
        json={"name": "shop", "trafficDomain": "https://shop.example.com"},
        headers=user.headers,
    ).json()
    key = client.post(
        f"/traffic-source/{source['id']}/ingest-keys", json={"name": "app"}, headers=user.headers
    ).json()["key"]
    headers = bearer(key)

    mine = client.get("/prompts/resolve", params={"title": "Owner's prompt"}, headers=headers)
    assert mine.status_code == 200, mine.text
    assert mine.json()["_id"] == prompt["_id"]

    # Another user's prompt does not exist for this key, by id or by title.
    for params in ({"id": theirs["_id"]}, {"title": "Their prompt"}):
        assert_error(client.get("/prompts/resolve", params=params, headers=headers), 404, NO_PROMPT)
    # The same holds for another user's token.
    response = client.get("/prompts/resolve", params={"id": prompt["_id"]}, headers=other.headers)
    assert_error(response, 404, NO_PROMPT)

    # Read-only: an ingest key cannot read the library otherwise, nor move labels.
    assert client.get(f"/prompts/{prompt['_id']}", headers=headers).status_code == 403
    put = client.put(f"/prompts/{prompt['_id']}/labels/prod", json={"version": 1}, headers=headers)
    assert put.status_code == 403
    assert client.get("/prompts", headers=headers).status_code == 403
