"""Hostile input on the ingest and statistics endpoints: always a 4xx in the family's envelope.

The rule under test: bad input gets a clear 4xx with a reason, never a 500, a traceback or a
hang, and nothing already stored is lost or half-written. Every write case counts the rows of
every traffic table (and the rollups) before and after, so a half-written record shows.

Hundreds of cases share one world per database (``world_backend`` is parametrized per module):
every check is a difference of counts, and what needs a known state (a key to revoke, exact
totals) gets a source of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from fixtures.database import chosen_backends, events_url_for, fresh_database, settings_for
from fixtures.records import body, compose
from fixtures.sources import create_source, ingest_key
from fixtures.users import AUser, bearer, sign_up
from logharbor.app import create_app
from logharbor.auth.tokens import issue_token
from logharbor.common.ids import new_id
from logharbor.db import tables

JSON = {"Content-Type": "application/json"}
_TABLES = ("domains", "pathnames", "requests", "responses", "http_traffic")


@dataclass
class World:
    client: TestClient
    user: AUser
    source_id: str
    other_source_id: str  # owned by another user
    key: str  # an ingest key of source_id
    quiet_source_id: str  # holds one record, and no test writes there

    def counts(self) -> dict[str, int]:
        db = self.client.app.state.db  # type: ignore[attr-defined]
        with db.read() as conn:
            found = {
                name: int(
                    conn.execute(
                        select(func.count()).select_from(getattr(tables, name))
                    ).scalar_one()
                )
                for name in _TABLES
            }
            rolled = conn.execute(
                select(func.coalesce(func.sum(tables.traffic_rollups.c.count), 0)).where(
                    tables.traffic_rollups.c.resolution == 60
                )
            ).scalar_one()
        found["rollups"] = int(rolled)
        if db.events is not None:  # records (with their payloads) and rollups on ClickHouse
            records = int(db.events.query("SELECT count() AS n FROM http_traffic")[0]["n"])
            found["http_traffic"] = records
            found["requests"] += records
            found["responses"] += records
            found["rollups"] = int(
                db.events.query(
                    "SELECT sumMerge(count) AS n FROM traffic_rollups WHERE resolution = 60"
                )[0]["n"]
                or 0
            )
        return found

    def stored(self) -> int:
        return self.counts()["http_traffic"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "world_backend" in metafunc.fixturenames:
        backends = chosen_backends(metafunc.config)
        metafunc.parametrize("world_backend", backends, scope="module")


@pytest.fixture(scope="module")
def world(
    world_backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("hostile")
    chdb = request.getfixturevalue("chdb_directory") if world_backend == "chdb" else None
    events_url = events_url_for(world_backend, chdb)
    with (
        fresh_database(world_backend, request, directory) as url,
        TestClient(create_app(settings_for(url, directory, events_url))) as client,
    ):
        user = sign_up(client)
        other = sign_up(client)
        source_id = create_source(client, user).id
        other_source_id = create_source(client, other, name="Not yours").id
        quiet_source_id = create_source(client, user, name="Quiet").id
        # One record already stored on each, which no refused request may disturb.
        for headers, sid in (
            (user.headers, source_id),
            (other.headers, other_source_id),
            (user.headers, quiet_source_id),
        ):
            compose(client, headers, sid)
        key = ingest_key(client, user, source_id)
        yield World(client, user, source_id, other_source_id, key, quiet_source_id)


def assert_error(response: Response, status: int, field: str | None = None) -> dict[str, Any]:
    """The Arkyn envelope with a reason; ``field`` must be named in ``fieldErrors``."""
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    payload = response.json()
    assert isinstance(payload, dict), payload
    assert isinstance(payload.get("name"), str) and payload["name"], payload
    assert isinstance(payload.get("message"), str) and payload["message"], payload
    if field is not None:
        assert field in payload.get("fieldErrors", {}), payload
    return payload  # type: ignore[no-any-return]


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def raw_record(value: str, **changes: Any) -> bytes:
    """A compose body whose ``responseBody`` is the raw JSON text ``value``."""
    text = json.dumps(body(responseBody="@@", **changes))
    return text.replace('"@@"', value).encode()


# --- compose, its alias and /ingest-log --------------------------------------------------------

COMPOSE_PATHS = ["compose", "alias", "ingest-log"]


def _compose_target(world: World, kind: str) -> tuple[str, dict[str, Any]]:
    if kind == "compose":
        return f"/http-traffic-record/{world.source_id}", {}
    if kind == "alias":
        return f"/http-traffic-records/{world.source_id}", {}
    return "/ingest-log", {"trafficSourceId": world.source_id}


def _send(world: World, kind: str, changes: dict[str, Any], headers: Any = None) -> Response:
    path, extra = _compose_target(world, kind)
    # json.dumps writes lone surrogates as \\udXXX escapes and NaN/Infinity as bare words,
    # which is how hostile clients send them.
    content = json.dumps(body(**{**extra, **changes})).encode()
    return world.client.post(path, content=content, headers={**world.user.headers, **JSON})


BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"status": "200"}, "status"),
    ({"status": 200.0}, "status"),
    ({"status": 200.5}, "status"),
    ({"status": 2**70}, "status"),
    ({"status": 10**400}, "status"),
    ({"status": -200}, "status"),
    ({"status": 0}, "status"),
    ({"status": 600}, "status"),
    ({"status": True}, "status"),
    ({"status": None}, "status"),
    ({"status": [200]}, "status"),
    ({"elapsedTime": float("nan")}, "elapsedTime"),
    ({"elapsedTime": float("inf")}, "elapsedTime"),
    ({"elapsedTime": float("-inf")}, "elapsedTime"),
    ({"elapsedTime": -1}, "elapsedTime"),
    ({"elapsedTime": 1e300}, "elapsedTime"),
    ({"elapsedTime": 10**400}, "elapsedTime"),
    ({"elapsedTime": "12"}, "elapsedTime"),
    ({"elapsedTime": None}, "elapsedTime"),
    ({"elapsedTime": {}}, "elapsedTime"),
    ({"method": "FETCH"}, "method"),
    ({"method": ""}, "method"),
    ({"method": "GET\x00"}, "method"),
    ({"method": "GET; DROP TABLE http_traffic"}, "method"),
    ({"method": 1}, "method"),
    ({"method": None}, "method"),
    ({"protocol": "ftp"}, "protocol"),
    ({"protocol": 443}, "protocol"),
    ({"domainUrl": ""}, "domainUrl"),
    ({"domainUrl": "https://" + "a" * 5000 + ".com"}, "domainUrl"),
    ({"domainUrl": "https://a\x00b.com"}, "domainUrl"),
    ({"domainUrl": "https://a\nb.com"}, "domainUrl"),
    ({"domainUrl": "https://\ud800.com"}, "domainUrl"),
    ({"domainUrl": "javascript:alert(1)"}, "domainUrl"),
    ({"domainUrl": 1}, "domainUrl"),
    ({"domainUrl": None}, "domainUrl"),
    ({"domainUrl": ["https://a.com"]}, "domainUrl"),
    ({"pathnameUrl": ""}, "pathnameUrl"),
    ({"pathnameUrl": "no-slash"}, "pathnameUrl"),
    ({"pathnameUrl": "/" + "a" * 5000}, "pathnameUrl"),
    ({"pathnameUrl": "/a\x00b"}, "pathnameUrl"),
    ({"pathnameUrl": "/\udc00"}, "pathnameUrl"),
    ({"pathnameUrl": 1}, "pathnameUrl"),
    ({"pathnameUrl": {"path": "/"}}, "pathnameUrl"),
    ({"requestHeaders": {"a": "x\x00"}}, "requestHeaders"),
    ({"requestHeaders": {"\ud800": "x"}}, "requestHeaders"),
    ({"requestHeaders": {"a": "x" * 200_000}}, "requestHeaders"),
    ({"responseHeaders": {"a": float("nan")}}, "responseHeaders"),
    ({"queryParams": {"q": "\udfff"}}, "queryParams"),
    ({"requestBody": {"deep": json.loads(nested(100))}}, "requestBody"),
    ({"responseBody": "\ud800"}, "responseBody"),
    ({"trafficUserId": 1.5}, "trafficUserId"),
    ({"trafficUserId": True}, "trafficUserId"),
    ({"trafficUserId": {"id": 1}}, "trafficUserId"),
    ({"trafficUserId": "u" * 300}, "trafficUserId"),
    ({"trafficUserId": "u\x00"}, "trafficUserId"),
    ({"routeTemplate": 1}, "routeTemplate"),
    ({"routeTemplate": "/a\x00"}, "routeTemplate"),
    ({"id": "not-a-uuid"}, "id"),
    ({"id": "1' OR '1'='1"}, "id"),
    ({"id": "'; DROP TABLE http_traffic; --"}, "id"),
    ({"id": ""}, "id"),
    ({"id": 123}, "id"),
    ({"id": "0197548f-0e8e-7550-b283-f26fd98a9423x"}, "id"),
]


@pytest.mark.parametrize("kind", COMPOSE_PATHS)
@pytest.mark.parametrize(("changes", "field"), BAD_FIELDS, ids=[f for _, f in BAD_FIELDS])
def test_compose_bad_field_is_400_naming_it(
    world: World, kind: str, changes: dict[str, Any], field: str
) -> None:
    before = world.counts()
    assert_error(_send(world, kind, changes), 400, field)
    assert world.counts() == before


ACCEPTED: list[dict[str, Any]] = [
    {"requestHeaders": [["accept", "*/*"]]},  # headers as a list: returned as they came
    {"requestHeaders": None, "responseHeaders": "null"},
    {"domainUrl": "https://bücher.example", "pathnameUrl": "/straße/日本"},
    {"responseBody": "x\x00y"},  # bodies may hold NUL, headers may not
    {"responseBody": "é" * 600_000},  # over the body cap: head kept, flagged truncated
    {"trafficUserId": 123},
    {"status": 599, "elapsedTime": 0},
    {"extra": {"unknown": ["keys", "are", "ignored"]}},
]


@pytest.mark.parametrize("kind", COMPOSE_PATHS)
@pytest.mark.parametrize("changes", ACCEPTED, ids=range(len(ACCEPTED)))
def test_compose_odd_but_valid_input_is_stored_once(
    world: World, kind: str, changes: dict[str, Any]
) -> None:
    before = world.stored()
    response = _send(world, kind, changes)
    assert response.status_code == 201, response.text
    assert world.stored() == before + 1


UNREADABLE: list[tuple[bytes, str]] = [
    (b"", "body"),
    (b"{not json", "body"),
    (b"\xff\xfe{}", "body"),
    (b"[]", "body"),
    (b"[1, 2]", "body"),
    (b"1", "body"),
    (b'"a string"', "body"),
    (b"null", "body"),
    (b"true", "body"),
    (nested(10_000).encode(), "body"),
    (raw_record(nested(10_000)), "body"),
    (raw_record(nested(900)), "responseBody"),
    (raw_record("NaN"), "responseBody"),
    (raw_record('"\\ud800"'), "responseBody"),
]


@pytest.mark.parametrize("kind", COMPOSE_PATHS)
@pytest.mark.parametrize(
    ("content", "field"), UNREADABLE, ids=[str(i) for i in range(len(UNREADABLE))]
)
def test_unreadable_or_wrongly_shaped_bodies(
    world: World, kind: str, content: bytes, field: str
) -> None:
    path, extra = _compose_target(world, kind)
    if extra and content.startswith(b"{") and b'"domainUrl"' in content:
        content = b'{"trafficSourceId": "%s", ' % world.source_id.encode() + content[1:]
    before = world.counts()
    response = world.client.post(path, content=content, headers={**world.user.headers, **JSON})
    payload = assert_error(response, 400)
    if field != "body":
        assert field in payload["fieldErrors"], payload
    else:
        assert payload.get("fieldErrors"), payload
    assert world.counts() == before


@pytest.mark.parametrize("kind", [*COMPOSE_PATHS, "batch"])
def test_a_body_over_the_request_limit_is_413(world: World, kind: str) -> None:
    if kind == "batch":
        path = f"/http-traffic-record/{world.source_id}/batch"
    else:
        path = _compose_target(world, kind)[0]
    limit = world.client.app.state.settings.max_request_bytes  # type: ignore[attr-defined]
    content = json.dumps(body(responseBody="x" * (limit + 1))).encode()
    before = world.counts()
    response = world.client.post(path, content=content, headers={**world.user.headers, **JSON})
    assert_error(response, 413)
    assert world.counts() == before


CONTENT_TYPES: list[tuple[str | None, int]] = [
    (None, 201),  # Arkyn collectors may leave it out
    ("application/json", 201),
    ("application/json; charset=utf-8", 201),
    ("application/vnd.api+json", 201),
    ("text/plain", 415),
    ("application/x-www-form-urlencoded", 415),
    ("multipart/form-data; boundary=x", 415),
    ("application/xml", 415),
    (";;;", 415),
    ("", 415),
]


@pytest.mark.parametrize("kind", COMPOSE_PATHS)
@pytest.mark.parametrize(("content_type", "status"), CONTENT_TYPES)
def test_content_type(world: World, kind: str, content_type: str | None, status: int) -> None:
    path, extra = _compose_target(world, kind)
    headers = dict(world.user.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = world.stored()
    response = world.client.post(path, content=json.dumps(body(**extra)).encode(), headers=headers)
    if status == 201:
        assert response.status_code == 201, response.text
        assert world.stored() == before + 1
    else:
        assert_error(response, status)
        assert world.stored() == before


def _headers(world: World, auth: str) -> dict[str, str]:
    secret = world.client.app.state.settings.secret_key  # type: ignore[attr-defined]
    return {
        "none": {},
        "garbage": bearer("nope"),
        "empty bearer": {"Authorization": "Bearer "},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "wrong secret": bearer(issue_token(world.user.id, "x" * 40, 3600)),
        "expired": bearer(issue_token(world.user.id, secret, -10)),
        "unknown key": bearer("lhk_" + "0" * 40),
    }[auth]


AUTH_CASES = [
    ("none", 400),
    ("garbage", 401),
    ("empty bearer", 401),
    ("basic", 401),
    ("wrong secret", 401),
    ("expired", 401),
    ("unknown key", 401),
]


@pytest.mark.parametrize(("auth", "status"), AUTH_CASES)
@pytest.mark.parametrize("kind", [*COMPOSE_PATHS, "batch", "api-ingest"])
def test_bad_credentials_store_nothing(world: World, kind: str, auth: str, status: int) -> None:
    before = world.counts()
    headers = {**_headers(world, auth), **JSON}
    if kind == "batch":
        path, content = f"/http-traffic-record/{world.source_id}/batch", [body()]
    elif kind == "api-ingest":
        path, content = "/api/v1/ingest", {"trafficSourceId": world.source_id, "records": [body()]}
    else:
        path, extra = _compose_target(world, kind)
        content = body(**extra)
    response = world.client.post(path, content=json.dumps(content).encode(), headers=headers)
    assert_error(response, status)
    assert world.counts() == before


SOURCE_IDS = [
    ("x", 400),
    ("1' OR '1'='1", 400),
    ("0197548f-0e8e-7550-b283-f26fd98a9423' --", 400),
    ("%00", 400),
    ("0197548f-0e8e-7550-b283-f26fd98a9423", 404),  # well formed, unknown
    ("other", 403),  # another user's source
]


@pytest.mark.parametrize(("source", "status"), SOURCE_IDS)
@pytest.mark.parametrize("kind", ["compose", "alias", "ingest-log", "batch", "api-ingest"])
def test_source_ids_that_are_not_yours(world: World, kind: str, source: str, status: int) -> None:
    sid = world.other_source_id if source == "other" else source
    before = world.counts()
    if kind in ("compose", "alias", "batch"):
        plural = "s" if kind == "alias" else ""
        path = f"/http-traffic-record{plural}/{sid}" + ("/batch" if kind == "batch" else "")
        content: Any = [body()] if kind == "batch" else body()
    elif kind == "ingest-log":
        path, content = "/ingest-log", body(trafficSourceId=sid)
    else:
        path, content = "/api/v1/ingest", {"trafficSourceId": sid, "records": [body()]}
    response = world.client.post(
        path, content=json.dumps(content).encode(), headers={**world.user.headers, **JSON}
    )
    field = "trafficSourceId" if status == 400 else None
    assert_error(response, status, field)
    assert world.counts() == before


@pytest.mark.parametrize("kind", ["compose", "ingest-log", "batch", "api-ingest"])
def test_ingest_keys_of_another_source_or_revoked(world: World, kind: str) -> None:
    client, user = world.client, world.user
    other_key = ingest_key(client, user, create_source(client, user, name="Second").id)
    # A source and key of this test's own: the shared ones must stay valid for the others.
    sid = create_source(client, user, name="To revoke").id
    key = ingest_key(client, user, sid)
    keys = client.get(f"/traffic-source/{sid}/ingest-keys", headers=user.headers)
    key_id = keys.json()[0]["id"]

    def send(key: str) -> Response:
        if kind == "compose":
            path, content = f"/http-traffic-record/{sid}", body()
        elif kind == "ingest-log":
            path, content = "/ingest-log", body(trafficSourceId=sid)
        elif kind == "batch":
            path, content = f"/http-traffic-record/{sid}/batch", [body()]  # type: ignore[assignment]
        else:
            path, content = "/api/v1/ingest", {"trafficSourceId": sid, "records": [body()]}
        return client.post(
            path, content=json.dumps(content).encode(), headers={**bearer(key), **JSON}
        )

    before = world.counts()
    assert_error(send(other_key), 403)
    assert send(key).status_code == 201
    after = world.stored()
    revoked = client.delete(f"/traffic-source/{sid}/ingest-keys/{key_id}", headers=user.headers)
    assert revoked.status_code == 204
    assert_error(send(key), 401)
    assert world.stored() == after == before["http_traffic"] + 1


def test_a_client_id_of_another_source_is_refused_and_overwrites_nothing(world: World) -> None:
    client = world.client
    owner_id = new_id()
    stored = client.post(
        f"/http-traffic-record/{world.source_id}",
        json=body(id=owner_id),
        headers=world.user.headers,
    )
    assert stored.status_code == 201
    other = create_source(client, world.user, name="Third").id
    before = world.counts()
    for path, extra in (
        (f"/http-traffic-record/{other}", {}),
        ("/ingest-log", {"trafficSourceId": other}),
    ):
        response = client.post(
            path, json=body(id=owner_id, status=500, **extra), headers=world.user.headers
        )
        assert_error(response, 409, "id")
    assert world.counts() == before
    kept = client.get(
        f"/http-traffic-record/{world.source_id}/{owner_id}", headers=world.user.headers
    )
    assert kept.status_code == 200 and kept.json()["status"] == 200


# --- batch and /api/v1/ingest ------------------------------------------------------------------


def _batch(world: World, content: bytes, kind: str = "batch", headers: Any = None) -> Response:
    path = f"/http-traffic-record/{world.source_id}/batch" if kind == "batch" else "/api/v1/ingest"
    return world.client.post(
        path, content=content, headers=headers or {**world.user.headers, **JSON}
    )


BAD_BATCHES: list[tuple[str, bytes, str]] = [
    ("batch", b"", "body"),
    ("batch", b"{not json", "body"),
    ("batch", b"\xff", "body"),
    ("batch", nested(10_000).encode(), "body"),
    ("batch", b"[]", "records"),
    ("batch", b"{}", "records"),
    ("batch", b'{"records": []}', "records"),
    ("batch", b'{"records": {}}', "records"),
    ("batch", b'{"records": "x"}', "records"),
    ("batch", b'{"records": null}', "records"),
    ("batch", b"1", "records"),
    ("batch", b'"x"', "records"),
    ("batch", b"null", "records"),
    ("batch", json.dumps([body()] * 1001).encode(), "records"),
    ("batch", b'[null, 1, "x", [], {}]', "records.0.body"),
    ("api", b"[]", "body"),
    ("api", json.dumps([body()]).encode(), "body"),
    ("api", b"null", "body"),
    ("api", b'"x"', "body"),
    ("api", b'{"records": []}', "records"),
    ("api", b'{"trafficSourceId": 1, "records": [{}]}', "trafficSourceId"),
    ("api", b'{"trafficSourceId": [], "records": [{}]}', "trafficSourceId"),
    ("api", b'{"trafficSourceId": "x", "records": [{}]}', "trafficSourceId"),
]


@pytest.mark.parametrize(
    ("kind", "content", "field"), BAD_BATCHES, ids=[str(i) for i in range(len(BAD_BATCHES))]
)
def test_bad_batches_are_400_and_store_nothing(
    world: World, kind: str, content: bytes, field: str
) -> None:
    before = world.counts()
    payload = assert_error(_batch(world, content, kind), 400)
    if field == "body":
        assert payload.get("fieldErrors"), payload
    else:
        assert field in payload["fieldErrors"], payload
    assert world.counts() == before


@pytest.mark.parametrize("kind", ["batch", "api"])
def test_good_items_are_stored_and_each_bad_one_named_by_index(world: World, kind: str) -> None:
    items: list[Any] = [
        body(),
        body(status="200"),
        None,
        body(pathnameUrl="/b", elapsedTime=-1),
        "text",
        body(responseBody={"deep": json.loads(nested(100))}),
        body(domainUrl="https://\ud800.example"),
        body(pathnameUrl=f"/c-{kind}", method="delete", status=503),
        [],
        body(requestHeaders={"k": "\x00"}),
        body(id="'; DROP TABLE http_traffic; --"),
    ]
    content = json.dumps(
        items if kind == "batch" else {"trafficSourceId": world.source_id, "records": items}
    )
    before = world.counts()
    response = _batch(world, content.encode(), kind)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert (answer["received"], answer["stored"], answer["failed"]) == (11, 2, 9)
    assert [item["index"] for item in answer["items"]] == [0, 7]
    errors = {error["index"]: error["errors"] for error in answer["errors"]}
    assert set(errors) == {1, 2, 3, 4, 5, 6, 8, 9, 10}
    assert "status" in errors[1] and "elapsedTime" in errors[3]
    assert "responseBody" in errors[5] and "domainUrl" in errors[6]
    assert "requestHeaders" in errors[9] and "id" in errors[10]
    after = world.counts()
    for table in ("http_traffic", "requests", "responses", "rollups"):
        assert after[table] == before[table] + 2, table
    # Only the two stored records' names were created (/v1/users exists already, /c-… is new).
    assert (after["domains"], after["pathnames"]) == (before["domains"], before["pathnames"] + 1)


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", '"\\ud800"', '"\\udfff tail"'])
def test_a_batch_item_json_cannot_store_names_that_item_only(world: World, raw: str) -> None:
    """Non-standard JSON in one item (NaN, a lone surrogate escape) must not cost the others."""
    good = json.dumps(body())
    bad = json.dumps(body(responseBody="@@")).replace('"@@"', raw)
    before = world.stored()
    response = _batch(world, f"[{good}, {bad}, {good}]".encode())
    assert response.status_code == 201, response.text
    answer = response.json()
    assert [item["index"] for item in answer["items"]] == [0, 2]
    assert [error["index"] for error in answer["errors"]] == [1]
    assert "responseBody" in answer["errors"][0]["errors"]
    assert world.stored() == before + 2


def test_duplicated_client_ids_in_one_batch_are_one_record(world: World) -> None:
    rid = new_id()
    before = world.counts()
    items = [body(id=rid), body(id=rid.upper(), status=500), body(id=rid)]
    response = _batch(world, json.dumps(items).encode())
    assert response.status_code == 201, response.text
    answer = response.json()
    assert {item["id"] for item in answer["items"]} == {rid}
    # Each item is safely stored, as the README promises: the client may drop all three.
    assert (answer["received"], answer["stored"], answer["failed"]) == (3, 3, 0)
    after = world.counts()
    assert after["http_traffic"] == before["http_traffic"] + 1
    assert after["requests"] == before["requests"] + 1
    assert after["rollups"] == before["rollups"] + 1
    # Sent again (a retry): still one record.
    again = _batch(world, json.dumps(items).encode())
    assert again.status_code == 201, again.text
    assert again.json()["stored"] == 3 and {item["id"] for item in again.json()["items"]} == {rid}
    assert world.counts() == after


def test_a_batch_item_with_another_sources_record_id(world: World) -> None:
    client = world.client
    foreign = new_id()
    other = create_source(client, world.user, name="Elsewhere").id
    first = client.post(
        f"/http-traffic-record/{other}", json=body(id=foreign), headers=world.user.headers
    )
    assert first.status_code == 201
    before = world.counts()
    response = _batch(world, json.dumps([body(), body(id=foreign), body()]).encode())
    assert response.status_code == 201, response.text
    answer = response.json()
    assert [item["index"] for item in answer["items"]] == [0, 2]
    assert answer["errors"] == [{"index": 1, "errors": {"id": "Already used by another record"}}]
    assert world.stored() == before["http_traffic"] + 2
    # Alone, the batch has nothing to store: 400, and the other source's record is untouched.
    alone = _batch(world, json.dumps([body(id=foreign)]).encode())
    assert_error(alone, 400, "records.0.id")
    assert world.stored() == before["http_traffic"] + 2


@pytest.mark.parametrize(
    ("content_type", "status"),
    [(None, 201), ("text/plain", 415), ("application/xml", 415), ("", 415)],
)
@pytest.mark.parametrize("kind", ["batch", "api"])
def test_batch_content_type(world: World, kind: str, content_type: str | None, status: int) -> None:
    headers = dict(world.user.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    items = [body()]
    content = json.dumps(
        items if kind == "batch" else {"trafficSourceId": world.source_id, "records": items}
    )
    before = world.stored()
    response = _batch(world, content.encode(), kind, headers)
    if status == 201:
        assert response.status_code == 201, response.text
        assert world.stored() == before + 1
    else:
        assert_error(response, status)
        assert world.stored() == before


# --- statistics ----------------------------------------------------------------------------------

BAD_STATS: list[tuple[dict[str, str] | list[tuple[str, str]], str]] = [
    ({"startDate": "2025-07-02T00:00:00Z", "endDate": "2025-07-01T00:00:00Z"}, "startDate"),
    ({"startDate": "2025-07-01T00:00:00Z", "endDate": "2025-07-01T00:00:00Z"}, "startDate"),
    ({"startDate": "yesterday"}, "startDate"),
    ({"endDate": "2025-13-45"}, "endDate"),
    ({"startDate": "1e10"}, "startDate"),
    ({"startDate": "2025-07-01T00:00:00Z'; DROP TABLE traffic_rollups; --"}, "startDate"),
    ({"startDate": "2025-07-01T25:00:00Z"}, "startDate"),
    ({"endDate": "\x00"}, "endDate"),
    # Far past and far future: too many points for any interval but whole days.
    ({"startDate": "0001-01-02T00:00:00Z"}, "interval"),
    ({"startDate": "1970-01-01T00:00:00Z", "endDate": "9999-12-29T00:00:00Z"}, "interval"),
    ({"startDate": "0001-01-01T00:00:00Z"}, "startDate"),
    ({"startDate": "1970-01-01T00:00:00Z", "endDate": "9999-12-31T00:00:00Z"}, "endDate"),
    # Instants a datetime cannot shift to UTC, or whose rounding leaves the calendar.
    ({"startDate": "0001-01-01T00:00:00+01:00"}, "startDate"),
    ({"endDate": "9999-12-31T23:59:59-01:00"}, "endDate"),
    ({"endDate": "9999-12-31T23:59:59.500Z"}, "endDate"),
    ({"endDate": "0001-01-01T00:00:00Z"}, "endDate"),
    ({"startDate": "9999-12-31T23:00:00Z", "endDate": "9999-12-31T23:59:59Z"}, "endDate"),
    ({"interval": "0s"}, "interval"),
    ({"interval": "-1m"}, "interval"),
    ({"interval": "1y"}, "interval"),
    ({"interval": "garbage"}, "interval"),
    ({"interval": ""}, "interval"),
    ({"interval": "1M"}, "interval"),
    ({"groupBy": "user"}, "groupBy"),
    ({"groupBy": "pathname; DROP TABLE traffic_rollups"}, "groupBy"),
    ({"groupBy": ""}, "groupBy"),
    ({"groupBy": "PATHNAME"}, "groupBy"),
    ({"limit": "0"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"limit": "1e3"}, "limit"),
    ({"limit": "9" * 30}, "limit"),
    ({"limit": "²"}, "limit"),
    ({"status": "500"}, "status"),
    ({"status": "9xx"}, "status"),
    ({"method": "FETCH"}, "method"),
    ({"pathnameId": "1' OR '1'='1"}, "pathnameId"),
    ({"domainId": "x"}, "domainId"),
    ([("interval", "1h"), ("interval", "2h")], "interval"),
    ([("groupBy", "status"), ("groupBy", "user")], "groupBy"),
]


@pytest.mark.parametrize(
    ("params", "field"), BAD_STATS, ids=[str(i) for i in range(len(BAD_STATS))]
)
def test_stats_bad_parameters_are_400_naming_the_field(
    world: World, params: Any, field: str
) -> None:
    response = world.client.get(
        f"/stats/{world.source_id}", params=params, headers=world.user.headers
    )
    assert_error(response, 400, field)


GOOD_STATS: list[dict[str, str] | list[tuple[str, str]]] = [
    {},
    {"startDate": "", "endDate": ""},  # empty means the default range
    {"interval": "1h", "groupBy": "status", "status": "2XX", "method": "get"},
    {"startDate": "2025-07-01", "endDate": "2025-07-02"},
    {"startDate": "2025-07-01T00:00:00+14:00", "endDate": "2025-07-01T12:00:00-12:00"},
    {"startDate": "1999-01-01T00:00:00Z", "endDate": "2000-01-01T00:00:00Z", "interval": "1d"},
    {"startDate": "9999-12-29T00:00:00Z", "endDate": "9999-12-30T00:00:00Z", "interval": "1h"},
    {"startDate": "0001-01-02T00:00:00Z", "endDate": "0001-01-03T00:00:00Z"},
    {"limit": "1000", "groupBy": "pathname"},
    {"unknown": "ignored"},
]


@pytest.mark.parametrize("params", GOOD_STATS, ids=range(len(GOOD_STATS)))
def test_stats_edge_parameters_answer_200(world: World, params: Any) -> None:
    response = world.client.get(
        f"/stats/{world.source_id}", params=params, headers=world.user.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["trafficSourceId"] == world.source_id


def test_stats_counts_the_stored_records(world: World) -> None:
    response = world.client.get(f"/stats/{world.quiet_source_id}", headers=world.user.headers)
    assert response.status_code == 200, response.text
    assert response.json()["totals"]["count"] == 1


STATS_ACCESS = [
    ("other", "user", 403),  # as tests/stats/test_stats.py: another user's source
    ("0197548f-0e8e-7550-b283-f26fd98a9423", "user", 404),
    ("not-a-uuid", "user", 400),
    ("1' OR '1'='1", "user", 400),
    ("mine", "key", 403),  # an ingest key reads nothing
    ("mine", "none", 400),
    ("mine", "garbage", 401),
    ("mine", "expired", 401),
]


@pytest.mark.parametrize(("source", "auth", "status"), STATS_ACCESS)
def test_stats_access(world: World, source: str, auth: str, status: int) -> None:
    sid = {"other": world.other_source_id, "mine": world.source_id}.get(source, source)
    if auth == "user":
        headers = world.user.headers
    elif auth == "key":
        headers = bearer(world.key)
    else:
        headers = _headers(world, auth)
    response = world.client.get(f"/stats/{sid}", headers=headers)
    assert_error(response, status)


# --- the record lists share the date parsing --------------------------------------------------

LIST_DATES: list[tuple[str, str, int]] = [
    ("endDate", "9999-12-31", 200),  # through the calendar's last day: no end
    ("endDate", "9999-12-31T23:59:59.9999Z", 200),
    ("startDate", "9999-12-31T23:59:59.9999Z", 200),
    ("startDate", "0001-01-01T00:00:00+01:00", 400),  # before year 1 in UTC
    ("endDate", "0001-01-01T00:00:00+01:00", 400),
    ("endDate", "2025-02-30", 400),
]


@pytest.mark.parametrize(("name", "value", "status"), LIST_DATES)
@pytest.mark.parametrize("path", ["/http-traffic-record/{}", "/http-traffic/{}", "/core-log/{}"])
def test_list_dates_at_the_calendars_ends(
    world: World, path: str, name: str, value: str, status: int
) -> None:
    response = world.client.get(
        path.format(world.quiet_source_id), params={name: value}, headers=world.user.headers
    )
    if status == 200:
        assert response.status_code == 200, response.text
        expected = 0 if name == "startDate" or path.startswith("/core") else 1
        assert response.json()["meta"]["totalItems"] == expected
    else:
        assert_error(response, status, name)
