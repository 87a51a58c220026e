"""Tenancy: no route reads, changes or leaks another user's traffic; read-only shares; ingest
keys that write to one source and read nothing. Each of these failed on the original (§14)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from fixtures.records import BETA72_BODY, body, compose
from fixtures.sources import create_source, ingest_key
from fixtures.users import AUser, bearer

UNKNOWN = "0197548f-0e8e-7550-b283-f26fd98a9423"
MARKER = "tenant-a-private"


def _populate(client: TestClient, owner: AUser) -> dict[str, str]:
    """A source of ``owner`` with one of everything, and the ids of it all."""
    sid = create_source(client, owner, name=MARKER).id
    record = compose(
        client,
        owner.headers,
        sid,
        domainUrl=f"https://{MARKER}.example",
        pathnameUrl=f"/{MARKER}",
        responseBody={"data": MARKER},
    )
    core = client.post(f"/core-pathname/{sid}", json={"value": "/users/:id"}, headers=owner.headers)
    core_log = client.post(
        f"/core-log/{sid}",
        json={
            "status": 500,
            "method": "get",
            "elapsedTime": 1.5,
            "corePathnameId": core.json()["id"],
        },
        headers=owner.headers,
    )
    assert core_log.status_code == 201, core_log.text
    loose_request = client.post(
        "/request", json={"headers": {}, "body": MARKER}, headers=owner.headers
    )
    loose_response = client.post("/response", json={"headers": {}}, headers=owner.headers)
    key = client.post(
        f"/traffic-source/{sid}/ingest-keys", json={"name": "k"}, headers=owner.headers
    ).json()
    return {
        "source": sid,
        "domain": record["domainId"],
        "pathname": record["pathnameId"],
        "record": record["id"],
        "request": record["request"]["id"],
        "response": record["response"]["id"],
        "core_pathname": core.json()["id"],
        "core_log": core_log.json()["id"],
        "loose_request": loose_request.json()["id"],
        "loose_response": loose_response.json()["id"],
        "key_id": key["id"],
        "key": key["key"],
    }


def _attempts(a: dict[str, str], owner_id: str) -> list[tuple[str, str, Any]]:
    s = a["source"]
    traffic = {
        "status": 200,
        "method": "GET",
        "elapsedTime": 1,
        "domainId": a["domain"],
        "pathnameId": a["pathname"],
        "requestId": a["loose_request"],
        "responseId": a["loose_response"],
    }
    core_log = {
        "status": 200,
        "method": "GET",
        "elapsedTime": 1,
        "corePathnameId": a["core_pathname"],
    }
    return [
        ("GET", f"/traffic-source/{s}", None),
        ("PUT", f"/traffic-source/{s}", {"name": "stolen"}),
        ("PUT", f"/traffic-sources/{s}", {"retentionDays": 1}),
        ("DELETE", f"/traffic-source/{s}", None),
        ("DELETE", f"/traffic-sources/{s}", None),
        ("POST", f"/traffic-source/{s}/shares", {"email": "someone@example.com"}),
        ("GET", f"/traffic-source/{s}/shares", None),
        ("DELETE", f"/traffic-source/{s}/shares/{owner_id}", None),
        ("POST", f"/traffic-source/{s}/ingest-keys", {"name": "mine now"}),
        ("GET", f"/traffic-source/{s}/ingest-keys", None),
        ("DELETE", f"/traffic-source/{s}/ingest-keys/{a['key_id']}", None),
        ("POST", f"/domain/{s}", {"value": "https://evil.example"}),
        ("GET", f"/domain/{s}", None),
        ("GET", f"/domains/{s}", None),
        ("DELETE", f"/domain/{a['domain']}", None),
        ("POST", f"/pathname/{s}/{a['domain']}", {"value": "/x"}),
        ("GET", f"/pathname/{s}/{a['domain']}", None),
        ("DELETE", f"/pathname/{a['pathname']}", None),
        ("GET", f"/request/{a['request']}", None),
        ("GET", f"/request/{a['loose_request']}", None),
        ("GET", f"/response/{a['response']}", None),
        ("GET", f"/responses/{a['loose_response']}", None),
        ("POST", f"/http-traffic/{s}", traffic),
        ("GET", f"/http-traffic/{s}", None),
        ("DELETE", f"/http-traffic/{a['record']}", None),
        ("DELETE", f"/http-traffics/{a['record']}", None),
        ("POST", f"/http-traffic-record/{s}", BETA72_BODY),
        ("POST", f"/http-traffic-records/{s}", BETA72_BODY),
        ("GET", f"/http-traffic-record/{s}", None),
        ("GET", f"/http-traffic-record/{s}/{a['record']}", None),
        ("POST", "/ingest-log", {**BETA72_BODY, "trafficSourceId": s}),
        ("POST", f"/core-pathname/{s}", {"value": "/x/:id"}),
        ("GET", f"/core-pathname/{s}", None),
        ("DELETE", f"/core-pathname/{a['core_pathname']}", None),
        ("POST", f"/core-log/{s}", core_log),
        ("GET", f"/core-log/{s}", None),
    ]


def _snapshot(client: TestClient, owner: AUser, a: dict[str, str]) -> dict[str, Any]:
    s = a["source"]
    paths = [
        f"/traffic-source/{s}",
        f"/traffic-source/{s}/shares",
        f"/traffic-source/{s}/ingest-keys",
        f"/domain/{s}",
        f"/pathname/{s}/{a['domain']}",
        f"/http-traffic/{s}",
        f"/http-traffic-record/{s}",
        f"/core-pathname/{s}",
        f"/core-log/{s}",
        f"/request/{a['loose_request']}",
        f"/response/{a['loose_response']}",
    ]
    snapshot = {}
    for path in paths:
        response = client.get(path, headers=owner.headers)
        assert response.status_code == 200, (path, response.text)
        snapshot[path] = response.json()
    return snapshot


def test_another_user_can_neither_read_nor_change_nor_learn_anything(
    client: TestClient, make_user: Callable[..., AUser]
) -> None:
    alice, mallory = make_user(), make_user()
    a = _populate(client, alice)
    before = _snapshot(client, alice, a)
    mallory_source = create_source(client, mallory).id
    mallory_key = ingest_key(client, mallory, mallory_source)

    for principal in (mallory.headers, bearer(mallory_key)):
        for method, path, payload in _attempts(a, alice.id):
            response = client.request(method, path, json=payload, headers=principal)
            assert response.status_code in (403, 404), (method, path, response.status_code)
            assert MARKER not in response.text, (method, path, response.text)
            if response.status_code == 404:
                # A foreign id is answered like an unknown one.
                unknown_path = path
                for value in a.values():
                    unknown_path = unknown_path.replace(value, UNKNOWN)
                if unknown_path != path and _names_a_child(path, a):
                    twin = client.request(method, unknown_path, json=payload, headers=principal)
                    assert twin.status_code == 404
                    assert twin.json() == response.json(), (path, twin.json(), response.json())

    assert _snapshot(client, alice, a) == before


def _names_a_child(path: str, a: dict[str, str]) -> bool:
    """Whether the path names a child resource by its own id (not the source)."""
    return a["source"] not in path


def test_foreign_ids_cannot_be_linked_into_your_own_source(
    client: TestClient, make_user: Callable[..., AUser], rows: Callable[[], dict[str, int]]
) -> None:
    alice, mallory = make_user(), make_user()
    a = _populate(client, alice)
    mine = create_source(client, mallory).id
    own = compose(client, mallory.headers, mine)
    loose_request = client.post("/request", json={"headers": {}}, headers=mallory.headers).json()
    loose_response = client.post("/response", json={"headers": {}}, headers=mallory.headers).json()
    valid = {
        "status": 200,
        "method": "GET",
        "elapsedTime": 1,
        "domainId": own["domainId"],
        "pathnameId": own["pathnameId"],
        "requestId": loose_request["id"],
        "responseId": loose_response["id"],
    }
    before = rows()
    for field, foreign in (
        ("domainId", a["domain"]),
        ("pathnameId", a["pathname"]),
        ("requestId", a["loose_request"]),
        ("requestId", a["request"]),
        ("responseId", a["loose_response"]),
        ("responseId", a["response"]),
    ):
        response = client.post(
            f"/http-traffic/{mine}", json={**valid, field: foreign}, headers=mallory.headers
        )
        assert response.status_code == 404, (field, response.text)
        assert set(response.json()["fieldErrors"]) == {field}
    pathname = client.post(
        f"/pathname/{mine}/{a['domain']}", json={"value": "/x"}, headers=mallory.headers
    )
    assert pathname.status_code == 404
    assert set(pathname.json()["fieldErrors"]) == {"domainId"}
    core_log = client.post(
        f"/core-log/{mine}",
        json={
            "status": 200,
            "method": "GET",
            "elapsedTime": 1,
            "corePathnameId": a["core_pathname"],
        },
        headers=mallory.headers,
    )
    assert core_log.status_code == 404
    assert set(core_log.json()["fieldErrors"]) == {"corePathnameId"}
    assert rows() == before

    # The valid body works, once: a request or response is linked to one record only.
    assert (
        client.post(f"/http-traffic/{mine}", json=valid, headers=mallory.headers).status_code == 201
    )
    again = client.post(f"/http-traffic/{mine}", json=valid, headers=mallory.headers)
    assert again.status_code == 409
    assert set(again.json()["fieldErrors"]) == {"requestId"}


def test_get_or_create_is_scoped_to_the_source(
    client: TestClient, make_user: Callable[..., AUser]
) -> None:
    alice, bob = make_user(), make_user()
    a, b = create_source(client, alice).id, create_source(client, bob).id
    first = compose(client, alice.headers, a)
    second = compose(client, bob.headers, b)
    assert first["domain"] == second["domain"]
    assert first["domainId"] != second["domainId"]
    assert first["pathnameId"] != second["pathnameId"]
    core_a = client.post(f"/core-pathname/{a}", json={"value": "/u/:id"}, headers=alice.headers)
    core_b = client.post(f"/core-pathname/{b}", json={"value": "/u/:id"}, headers=bob.headers)
    assert core_a.json()["id"] != core_b.json()["id"]
    assert core_b.json()["trafficSourceId"] == b


def test_totals_count_only_the_callers_rows(
    client: TestClient, make_user: Callable[..., AUser]
) -> None:
    alice, bob = make_user(), make_user()
    a, b = create_source(client, alice).id, create_source(client, bob).id
    for _ in range(3):
        compose(client, alice.headers, a)
    compose(client, bob.headers, b)
    for path in (f"/http-traffic-record/{b}", f"/http-traffic/{b}", f"/domain/{b}"):
        meta = client.get(path, headers=bob.headers).json()["meta"]
        assert meta["totalItems"] == 1, path
    sources = client.get("/traffic-source", headers=bob.headers).json()
    assert [s["id"] for s in sources["data"]] == [b]
    assert sources["meta"]["totalItems"] == 1


def test_read_only_share(client: TestClient, make_user: Callable[..., AUser]) -> None:
    alice, carol = make_user(), make_user()
    a = _populate(client, alice)
    s = a["source"]
    assert client.get(f"/http-traffic-record/{s}", headers=carol.headers).status_code == 403

    shared = client.post(
        f"/traffic-source/{s}/shares", json={"email": carol.email.upper()}, headers=alice.headers
    )
    assert shared.status_code == 201, shared.text
    assert shared.json()["userId"] == carol.id
    assert shared.json()["permission"] == "READ_ONLY"
    listed = client.get(f"/traffic-source/{s}/shares", headers=alice.headers).json()
    assert [x["email"] for x in listed] == [carol.email]

    duplicate = client.post(
        f"/traffic-source/{s}/shares", json={"email": carol.email}, headers=alice.headers
    )
    assert duplicate.status_code == 409
    nobody = client.post(
        f"/traffic-source/{s}/shares", json={"email": "no@example.com"}, headers=alice.headers
    )
    assert nobody.status_code == 404
    assert "email" in nobody.json()["fieldErrors"]
    myself = client.post(
        f"/traffic-source/{s}/shares", json={"email": alice.email}, headers=alice.headers
    )
    assert myself.status_code == 400

    # Carol reads everything...
    sources = client.get("/traffic-source", headers=carol.headers).json()["data"]
    assert [(x["id"], x["access"]) for x in sources] == [(s, "shared")]
    for path in (
        f"/traffic-source/{s}",
        f"/domain/{s}",
        f"/pathname/{s}/{a['domain']}",
        f"/http-traffic/{s}",
        f"/http-traffic-record/{s}",
        f"/http-traffic-record/{s}/{a['record']}",
        f"/core-pathname/{s}",
        f"/core-log/{s}",
        f"/request/{a['request']}",
        f"/response/{a['response']}",
    ):
        response = client.get(path, headers=carol.headers)
        assert response.status_code == 200, (path, response.text)
    # ...and changes nothing.
    for method, path, payload in _attempts(a, alice.id):
        if method == "GET" and "shares" not in path and "ingest-keys" not in path:
            continue
        if path.endswith(f"/shares/{alice.id}"):
            continue
        response = client.request(method, path, json=payload, headers=carol.headers)
        assert response.status_code in (403, 404), (method, path, response.text)
    # A viewer may leave; the owner may revoke.
    assert (
        client.delete(f"/traffic-source/{s}/shares/{carol.id}", headers=carol.headers).status_code
        == 204
    )
    assert client.get(f"/traffic-source/{s}", headers=carol.headers).status_code == 403
    client.post(f"/traffic-source/{s}/shares", json={"email": carol.email}, headers=alice.headers)
    assert (
        client.delete(f"/traffic-source/{s}/shares/{carol.id}", headers=alice.headers).status_code
        == 204
    )
    assert client.get(f"/http-traffic-record/{s}", headers=carol.headers).status_code == 403
    gone = client.delete(f"/traffic-source/{s}/shares/{carol.id}", headers=alice.headers)
    assert gone.status_code == 404


def test_ingest_keys_write_only_and_revocable(client: TestClient, user: AUser) -> None:
    s = create_source(client, user).id
    other = create_source(client, user, name="Other").id
    created = client.post(
        f"/traffic-source/{s}/ingest-keys", json={"name": "prod"}, headers=user.headers
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("lhk_")
    assert created.json()["prefix"] == key[:12]
    listed = client.get(f"/traffic-source/{s}/ingest-keys", headers=user.headers).json()
    assert key not in str(listed)
    assert listed[0]["lastUsedAt"] is None and listed[0]["revokedAt"] is None

    k = bearer(key)
    request = client.post("/request", json={"headers": {"a": "b"}, "queryParams": {}}, headers=k)
    response = client.post("/response", json={"headers": {}}, headers=k)
    assert request.status_code == response.status_code == 201
    record = client.post(f"/http-traffic-record/{s}", json=BETA72_BODY, headers=k)
    assert record.status_code == 201
    traffic = client.post(
        f"/http-traffic/{s}",
        json={
            "status": 200,
            "method": "GET",
            "elapsedTime": 2,
            "domainId": record.json()["domainId"],
            "pathnameId": record.json()["pathnameId"],
            "requestId": request.json()["id"],
            "responseId": response.json()["id"],
        },
        headers=k,
    )
    assert traffic.status_code == 201, traffic.text
    core = client.post(f"/core-pathname/{s}", json={"value": "/a/:id"}, headers=k)
    assert core.status_code == 201
    log = client.post(
        f"/core-log/{s}",
        json={
            "status": 404,
            "method": "get",
            "elapsedTime": 2,
            "corePathnameId": core.json()["id"],
        },
        headers=k,
    )
    assert log.status_code == 201 and log.json()["level"] == "WARNING"
    assert client.post("/ingest-log", json=body(), headers=k).status_code == 201

    # Reads, management and other sources are refused.
    for method, path, payload in (
        ("GET", f"/http-traffic-record/{s}", None),
        ("GET", f"/http-traffic-record/{s}/{record.json()['id']}", None),
        ("GET", f"/request/{request.json()['id']}", None),
        ("GET", "/traffic-source", None),
        ("GET", f"/traffic-source/{s}/ingest-keys", None),
        ("POST", f"/domain/{s}", {"value": "https://x.io"}),
        ("DELETE", f"/http-traffic/{traffic.json()['id']}", None),
        ("POST", f"/http-traffic-record/{other}", BETA72_BODY),
        ("POST", "/ingest-log", {**BETA72_BODY, "trafficSourceId": other}),
    ):
        denied = client.request(method, path, json=payload, headers=k)
        assert denied.status_code == 403, (method, path, denied.text)

    # A user's own loose rows cannot be linked with the key (they are not the source's).
    loose = client.post("/request", json={"headers": {}}, headers=user.headers).json()
    link = client.post(
        f"/core-log/{s}",
        json={
            "status": 200,
            "method": "GET",
            "elapsedTime": 1,
            "corePathnameId": core.json()["id"],
            "requestId": loose["id"],
        },
        headers=k,
    )
    assert link.status_code == 404

    used = client.get(f"/traffic-source/{s}/ingest-keys", headers=user.headers).json()[0]
    assert used["lastUsedAt"] is not None

    assert (
        client.delete(
            f"/traffic-source/{s}/ingest-keys/{used['id']}", headers=user.headers
        ).status_code
        == 204
    )
    assert client.post(f"/http-traffic-record/{s}", json=BETA72_BODY, headers=k).status_code == 401
    revoked = client.get(f"/traffic-source/{s}/ingest-keys", headers=user.headers).json()[0]
    assert revoked["revokedAt"] is not None
    missing = client.delete(
        f"/traffic-source/{other}/ingest-keys/{used['id']}", headers=user.headers
    )
    assert missing.status_code == 404
