"""Compose (``POST /http-traffic-record/:id``) and ``POST /ingest-log``: every collector format,
one transaction, full bodies, masking, and bad input that leaves nothing behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from fixtures.records import BETA72_BODY, BETA83_BODY, STRICT_BODY, body, compose
from fixtures.sources import Source, ingest_key
from fixtures.users import AUser, bearer


def test_beta72_objects_and_upper_case(client: TestClient, user: AUser, source: Source) -> None:
    response = client.post(
        f"/http-traffic-record/{source.id}", json=BETA72_BODY, headers=user.headers
    )

    assert response.status_code == 201, response.text
    record = response.json()
    assert record["method"] == "GET"
    assert record["protocol"] == "HTTPS"
    assert record["level"] == "INFO"
    assert record["elapsedTime"] == 123.456
    assert record["domain"] == "https://api.example.com"
    assert record["pathname"] == "/v1/users"
    assert record["trafficSourceId"] == source.id
    assert record["request"]["headers"] == {
        "Authorization": "****",
        "Content-Type": "application/json",
    }
    assert record["request"]["queryParams"] == {"page": "1"}
    assert record["request"]["body"] is None
    assert record["response"]["body"] == {"id": 1}
    assert record["response"]["headers"] == {"content-type": "application/json"}


def test_beta83_json_text_and_lower_case(client: TestClient, user: AUser, source: Source) -> None:
    response = client.post(
        f"/http-traffic-records/{source.id}", json=BETA83_BODY, headers=user.headers
    )

    assert response.status_code == 201, response.text
    record = response.json()
    assert record["method"] == "GET"
    assert record["protocol"] == "HTTPS"
    # JSON text comes back as text, with the secret masked inside it.
    headers = record["request"]["headers"]
    assert isinstance(headers, str)
    assert json.loads(headers) == {"Authorization": "****", "Content-Type": "application/json"}
    assert record["request"]["queryParams"] == '{"page":"1"}'
    # The text "null" is how these collectors say "no body".
    assert record["request"]["body"] is None
    assert record["request"]["bodySize"] == 0
    assert record["response"]["body"] == '{"id":1}'
    assert record["response"]["bodyPreview"] == '{"id":1}'


def test_strict_format_of_the_current_original(
    client: TestClient, user: AUser, source: Source
) -> None:
    record = compose(client, user.headers, source.id, **STRICT_BODY)
    assert record["status"] == 201
    assert record["method"] == "POST"
    assert record["elapsedTime"] == 150
    assert record["request"]["body"] == '{"name": "Jane"}'
    assert record["response"]["body"] == '{"id": 2, "name": "Jane"}'


def test_level_from_status(client: TestClient, user: AUser, source: Source) -> None:
    levels = {100: "INFO", 302: "INFO", 399: "INFO", 404: "WARNING", 499: "WARNING"}
    for status, level in {**levels, 500: "FATAL", 599: "FATAL"}.items():
        assert compose(client, user.headers, source.id, status=status)["level"] == level


def test_accepted_variants(client: TestClient, user: AUser, source: Source) -> None:
    headers = user.headers
    sid = source.id
    # protocol is optional (the scheme decides), enums in mixed case, null bodies and headers.
    minimal = body(method="pAtCh", requestBody=None, responseBody=None, responseHeaders=None)
    del minimal["protocol"], minimal["trafficUserId"], minimal["queryParams"]
    response = client.post(f"/http-traffic-record/{sid}", json=minimal, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["method"] == "PATCH"
    assert response.json()["response"]["headers"] is None

    # Bodies of every JSON type come back as they came.
    values = ["plain text", [1, "two", {"three": 3}], 42, True, {"nested": {"a": [1]}}]
    for value in [*values, "with a NUL \u0000 inside", {"k": "\u0000"}, ""]:
        record = compose(client, headers, sid, responseBody=value)
        detail = client.get(f"/http-traffic-record/{sid}/{record['id']}", headers=headers)
        assert detail.json()["response"]["body"] == value

    # The domain is normalized to its origin; the same origin is one domain row.
    a = compose(client, headers, sid, domainUrl="HTTPS://API.Example.com:443/")
    b = compose(client, headers, sid, domainUrl="https://api.example.com")
    assert a["domain"] == "https://api.example.com"
    assert a["domainId"] == b["domainId"]
    c = compose(client, headers, sid, domainUrl="http://api.example.com:8080", protocol="HTTPS")
    assert (c["domain"], c["protocol"]) == ("http://api.example.com:8080", "HTTP")

    # Any string as the monitored app's user id, and numbers too.
    assert compose(client, headers, sid, trafficUserId="user-456")["trafficUserId"] == "user-456"
    assert compose(client, headers, sid, trafficUserId=42)["trafficUserId"] == "42"
    assert compose(client, headers, sid, elapsedTime=0)["elapsedTime"] == 0


def test_ingest_log_with_user_token_and_ingest_key(
    client: TestClient, user: AUser, source: Source
) -> None:
    sid = source.id
    with_token = client.post(
        "/ingest-log", json={**BETA83_BODY, "trafficSourceId": sid}, headers=user.headers
    )
    assert with_token.status_code == 201, with_token.text
    assert with_token.json()["trafficSourceId"] == sid

    missing = client.post("/ingest-log", json=BETA83_BODY, headers=user.headers)
    assert missing.status_code == 400
    assert "trafficSourceId" in missing.json()["fieldErrors"]

    key = ingest_key(client, user, sid)
    with_key = client.post(
        "/ingest-log", json={**BETA72_BODY, "trafficSourceId": sid}, headers=bearer(key)
    )
    assert with_key.status_code == 201, with_key.text
    # The key names its source, so the id may be left out.
    implied = client.post("/ingest-log", json=BETA72_BODY, headers=bearer(key))
    assert implied.status_code == 201, implied.text
    assert implied.json()["trafficSourceId"] == sid

    listed = client.get(f"/http-traffic-record/{sid}", headers=user.headers).json()
    assert listed["meta"]["totalItems"] == 3


def compact_json(value: Any) -> str:
    """A body's measure and preview: its JSON as collectors send it, without spaces."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_record_list_and_detail(client: TestClient, user: AUser, source: Source) -> None:
    sid = source.id
    record = compose(client, user.headers, sid, responseBody={"items": list(range(100))})

    listed = client.get(f"/http-traffic-record/{sid}", headers=user.headers)
    assert listed.status_code == 200
    item = listed.json()["data"][0]
    assert item["id"] == record["id"]
    assert item["domain"] == "https://api.example.com"
    assert item["request"]["queryParams"] == {"page": "1"}
    assert "body" not in item["response"]
    assert item["response"]["bodyPreview"] == compact_json({"items": list(range(100))})[:200]

    detail = client.get(f"/http-traffic-record/{sid}/{record['id']}", headers=user.headers)
    assert detail.status_code == 200
    assert detail.json() == record
    assert detail.json()["response"]["body"] == {"items": list(range(100))}

    unknown = client.get(
        f"/http-traffic-record/{sid}/0197548f-0e8e-7550-b283-f26fd98a9423", headers=user.headers
    )
    assert unknown.status_code == 404
    assert "recordId" in unknown.json()["fieldErrors"]


def test_bodies_are_kept_in_full_up_to_the_cap(
    client: TestClient, user: AUser, source: Source
) -> None:
    sid = source.id
    big = {"blob": "x" * 300_000}  # beyond the original's 200 characters, under the cap
    record = compose(client, user.headers, sid, responseBody=big)
    assert record["response"]["bodyTruncated"] is False
    detail = client.get(f"/response/{record['response']['id']}", headers=user.headers).json()
    assert detail["body"] == big
    assert detail["bodySize"] == len(compact_json(big))
    assert len(detail["bodyPreview"]) == 200

    huge = "é" * 700_000  # 1.4 MB of UTF-8: over the 1 MiB default cap
    record = compose(client, user.headers, sid, requestBody=huge)
    request = client.get(f"/request/{record['request']['id']}", headers=user.headers).json()
    assert request["bodyTruncated"] is True
    assert request["bodySize"] == len(huge.encode())
    assert request["body"] == huge[: (1024 * 1024) // 2]
    assert request["queryParams"] == {"page": "1"}


def test_body_cap_is_configurable(
    settings: Any, make_user: Callable[..., AUser], client: TestClient
) -> None:
    from logharbor.app import create_app

    small = settings.model_copy(update={"body_cap_bytes": 1000, "body_preview_chars": 10})
    with TestClient(create_app(small)) as other:
        user = make_user()
        sid = other.post(
            "/traffic-source",
            json={"name": "x", "trafficDomain": "https://x.io"},
            headers=user.headers,
        ).json()["id"]
        record = compose(other, user.headers, sid, responseBody={"a": "b" * 2000})
        assert record["response"]["bodyTruncated"] is True
        assert record["response"]["body"] == compact_json({"a": "b" * 2000})[:1000]
        assert record["response"]["bodyPreview"] == '{"a":"bbbb'


SECRETS = {
    "Authorization": "Bearer secret-1",
    "Cookie": "session=secret-2",
    "X-Api-Key": "secret-3",
}


def _assert_no_secret(client: TestClient, user: AUser, sid: str) -> None:
    """Nothing stored anywhere under the source contains a secret value."""
    db = client.app.state.db  # type: ignore[attr-defined]
    from sqlalchemy import select

    from logharbor.db.tables import requests, responses

    with db.read() as conn:
        stored = [
            json.dumps(dict(row), default=str)
            for table in (requests, responses)
            for row in conn.execute(select(table)).mappings()
        ]
    assert stored
    for text in stored:
        assert "secret-" not in text, text


def test_masking_on_every_ingest_path(client: TestClient, user: AUser, source: Source) -> None:
    sid = source.id
    body_with_secrets = {"user": "jane", "password": "secret-4", "nested": [{"token": "secret-5"}]}
    # compose with objects, compose with JSON text, ingest-log with a key.
    compose(
        client,
        user.headers,
        sid,
        requestHeaders=SECRETS,
        requestBody=body_with_secrets,
        queryParams={"api_key": "secret-6", "q": "ok"},
        responseHeaders={"Set-Cookie": "id=secret-7"},
        responseBody={"access_token": "secret-8", "refresh_token": "secret-9"},
    )
    record = compose(
        client,
        user.headers,
        sid,
        requestHeaders=json.dumps(SECRETS),
        requestBody=json.dumps(body_with_secrets),
        queryParams=json.dumps({"token": "secret-10"}),
        responseBody="password=secret-11&user=jane",
    )
    assert json.loads(record["request"]["body"])["password"] == "****"
    pairs = compose(
        client,
        user.headers,
        sid,
        requestHeaders=[["Accept", "*/*"], ["authorization", "Basic secret-15"]],
    )
    assert pairs["request"]["headers"] == [["Accept", "*/*"], ["authorization", "****"]]
    assert record["response"]["body"] == "password=****&user=jane"
    key = ingest_key(client, user, sid)
    sent = client.post(
        "/ingest-log",
        json=body(requestHeaders=SECRETS, responseBody={"secret": "secret-12"}),
        headers=bearer(key),
    )
    assert sent.status_code == 201
    # Standalone request and response.
    for path, extra in (
        ("/request", {"queryParams": {"password": "secret-13"}}),
        ("/response", {}),
    ):
        created = client.post(
            path,
            json={"headers": SECRETS, "body": {"confirmPassword": "secret-14"}, **extra},
            headers=user.headers,
        )
        assert created.status_code == 201
        assert created.json()["headers"]["Authorization"] == "****"
    _assert_no_secret(client, user, sid)


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"status": "200"}, "status"),
    ({"status": 200.5}, "status"),
    ({"status": 99}, "status"),
    ({"status": 600}, "status"),
    ({"status": True}, "status"),
    ({"elapsedTime": -1}, "elapsedTime"),
    ({"elapsedTime": "12"}, "elapsedTime"),
    ({"method": "FETCH"}, "method"),
    ({"method": 1}, "method"),
    ({"protocol": "ftp"}, "protocol"),
    ({"domainUrl": "not a url"}, "domainUrl"),
    ({"domainUrl": "ftp://files.example.com"}, "domainUrl"),
    ({"domainUrl": ""}, "domainUrl"),
    ({"domainUrl": "https://" + "a" * 3000 + ".com"}, "domainUrl"),
    ({"pathnameUrl": "v1/users"}, "pathnameUrl"),
    ({"pathnameUrl": "/" + "a" * 3000}, "pathnameUrl"),
    ({"pathnameUrl": "/a b"}, "pathnameUrl"),
    ({"pathnameUrl": 5}, "pathnameUrl"),
    ({"trafficUserId": "u" * 300}, "trafficUserId"),
    ({"trafficUserId": {"id": 1}}, "trafficUserId"),
    ({"requestHeaders": {"x": "a" * 200_000}}, "requestHeaders"),
    ({"requestHeaders": {"x": "nul\u0000"}}, "requestHeaders"),
    ({"queryParams": {"q": "\ud800"}}, "queryParams"),
    ({"responseBody": {"text": "\udfff"}}, "responseBody"),
    ({"pathnameUrl": "/\ud800"}, "pathnameUrl"),
]


def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    client: TestClient,
    user: AUser,
    source: Source,
    rows: Callable[[], dict[str, int]],
) -> None:
    before = rows()
    for changes, field in BAD_INPUT:
        for path, extra in (
            (f"/http-traffic-record/{source.id}", {}),
            ("/ingest-log", {"trafficSourceId": source.id}),
        ):
            # json.dumps escapes lone surrogates as \\udXXX, which is how they arrive on the wire.
            content = json.dumps(body(**changes, **extra)).encode()
            response = client.post(
                path, content=content, headers={**user.headers, "Content-Type": "application/json"}
            )
            assert response.status_code == 400, (changes, response.text)
            assert response.json()["name"] == "BadRequest"
            assert set(response.json()["fieldErrors"]) == {field}, (changes, response.json())
    assert rows() == before


def test_missing_required_fields(client: TestClient, user: AUser, source: Source) -> None:
    required = ("domainUrl", "pathnameUrl", "status", "method", "elapsedTime", "requestHeaders")
    for field in (*required, "responseHeaders"):
        sent = body()
        del sent[field]
        path = f"/http-traffic-record/{source.id}"
        response = client.post(path, json=sent, headers=user.headers)
        assert response.status_code == 400
        assert set(response.json()["fieldErrors"]) == {field}


def test_unreadable_bodies(
    client: TestClient, user: AUser, source: Source, rows: Callable[[], dict[str, int]]
) -> None:
    before = rows()
    path = f"/http-traffic-record/{source.id}"
    headers = {**user.headers, "Content-Type": "application/json"}
    invalid_utf8 = (
        json.dumps(body(responseBody="PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"\xff\xfe")
    )
    for content in (invalid_utf8, b"{not json", b"[1, 2]", b"null", b'{"status": NaN}'):
        response = client.post(path, content=content, headers=headers)
        assert response.status_code == 400, (content, response.text)
        assert response.json()["fieldErrors"], response.json()
    nan = json.dumps(body()).replace("123.456", "NaN").encode()
    response = client.post(path, content=nan, headers=headers)
    assert response.status_code == 400
    assert "elapsedTime" in response.json()["fieldErrors"]
    wrong_type = client.post(
        path, content=b"x", headers={**user.headers, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    assert rows() == before


def test_compose_is_one_transaction(
    client: TestClient, user: AUser, source: Source, rows: Callable[[], dict[str, int]]
) -> None:
    """A failure after the domain and pathname were created rolls them back too."""
    before = rows()
    # A body string NUL passes validation of the JSON body but an over-long pathname is caught
    # in normalization; use an unknown source to fail inside the transaction instead.
    response = client.post(
        "/ingest-log",
        json=body(trafficSourceId="0197548f-0e8e-7550-b283-f26fd98a9423"),
        headers=user.headers,
    )
    assert response.status_code == 404
    assert rows() == before


def test_a_token_of_no_user_is_401_on_every_ingest_path(
    client: TestClient, user: AUser, source: Source, rows: Callable[[], dict[str, int]]
) -> None:
    """The ingest routes trust a token's signature before the body and confirm its user in the
    write transaction: a well-signed token of a user that does not exist is still a 401, whether
    the source exists or not, never a 403 or 404 that would tell it apart from a stranger's."""
    from logharbor.auth.tokens import issue_token
    from logharbor.common.ids import new_id

    before = rows()
    secret = client.app.state.settings.secret_key  # type: ignore[attr-defined]
    ghost = bearer(issue_token(new_id(), secret, 3600))
    for sid in (source.id, new_id()):
        for path, extra in (
            (f"/http-traffic-record/{sid}", {}),
            ("/ingest-log", {"trafficSourceId": sid}),
        ):
            response = client.post(path, json=body(**extra), headers=ghost)
            assert response.status_code == 401, (path, response.text)
        batch = client.post(f"/http-traffic-record/{sid}/batch", json=[body()], headers=ghost)
        assert batch.status_code == 401, batch.text
    assert rows() == before
