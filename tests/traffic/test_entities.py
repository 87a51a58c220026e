"""Traffic sources, domains, pathnames, core pathnames, requests and responses; deletes that
cascade; race-free get-or-create; and the OpenAPI description of every route."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fixtures.records import body, compose
from fixtures.sources import Source, create_source
from fixtures.users import AUser


def test_traffic_source_crud(client: TestClient, user: AUser) -> None:
    created = client.post(
        "/traffic-sources",
        json={"name": "Shop", "trafficDomain": "shop.example.com", "retentionDays": 30},
        headers=user.headers,
    )
    assert created.status_code == 201, created.text
    source = created.json()
    assert source["trafficDomain"] == "https://shop.example.com"
    assert source["retentionDays"] == 30
    assert source["userId"] == user.id
    assert source["access"] == "owner"

    sid = source["id"]
    renamed = client.put(f"/traffic-source/{sid}", json={"name": "Shop 2"}, headers=user.headers)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Shop 2"
    assert renamed.json()["retentionDays"] == 30  # untouched when absent
    # Two updates in a row both stick (the original's stale cache reverted the first).
    domain = client.put(
        f"/traffic-source/{sid}", json={"trafficDomain": "https://shop.io"}, headers=user.headers
    )
    assert domain.json()["name"] == "Shop 2"
    cleared = client.put(
        f"/traffic-source/{sid}", json={"retentionDays": None}, headers=user.headers
    )
    assert cleared.json()["retentionDays"] is None
    assert cleared.json()["trafficDomain"] == "https://shop.io"
    assert client.get(f"/traffic-source/{sid}", headers=user.headers).json() == cleared.json()

    for payload, field in (
        ({"name": "", "trafficDomain": "https://x.io"}, "name"),
        ({"name": "x", "trafficDomain": "not a url at all"}, "trafficDomain"),
        ({"name": "x", "trafficDomain": "https://x.io", "retentionDays": 0}, "retentionDays"),
        ({"name": "x", "trafficDomain": "https://x.io", "retentionDays": "7"}, "retentionDays"),
        ({"name": "x" * 201, "trafficDomain": "https://x.io"}, "name"),
        ({"trafficDomain": "https://x.io"}, "name"),
    ):
        bad = client.post("/traffic-source", json=payload, headers=user.headers)
        assert bad.status_code == 400, payload
        assert field in bad.json()["fieldErrors"], (payload, bad.json())
    assert (
        client.put(f"/traffic-source/{sid}", json={"name": ""}, headers=user.headers).status_code
        == 400
    )
    assert client.get("/traffic-source/not-a-uuid", headers=user.headers).status_code == 400


def test_domains_and_pathnames(client: TestClient, user: AUser, source: Source) -> None:
    sid = source.id
    # The docs' form (bare host + protocol) and a trailing slash are the same domain.
    a = client.post(
        f"/domain/{sid}",
        json={"value": "app.mysite.com", "protocol": "HTTPS"},
        headers=user.headers,
    )
    b = client.post(
        f"/domains/{sid}", json={"value": "https://app.mysite.com/"}, headers=user.headers
    )
    assert a.status_code == b.status_code == 201
    assert a.json() == b.json()
    assert a.json()["value"] == "https://app.mysite.com"
    assert a.json()["protocol"] == "HTTPS"
    http = client.post(
        f"/domain/{sid}", json={"value": "app.mysite.com", "protocol": "http"}, headers=user.headers
    )
    assert http.json()["protocol"] == "HTTP"
    assert http.json()["id"] != a.json()["id"]

    did = a.json()["id"]
    p1 = client.post(f"/pathname/{sid}/{did}", json={"value": "/v1/users"}, headers=user.headers)
    p2 = client.post(f"/pathnames/{sid}/{did}", json={"value": "/v1/users"}, headers=user.headers)
    assert p1.status_code == 201 and p1.json() == p2.json()
    assert p1.json()["domainId"] == did
    listed = client.get(f"/pathname/{sid}/{did}", headers=user.headers).json()
    assert listed["meta"]["totalItems"] == 1
    domains = client.get(f"/domain/{sid}?sort=value&sortDirection=asc", headers=user.headers).json()
    assert [d["value"] for d in domains["data"]] == [
        "http://app.mysite.com",
        "https://app.mysite.com",
    ]
    assert (
        client.get(f"/domain/{sid}?q=HTTP:", headers=user.headers).json()["meta"]["totalItems"] == 1
    )

    for path, payload, field in (
        (f"/domain/{sid}", {"value": ""}, "value"),
        (f"/domain/{sid}", {"value": "mailto:x@y.z"}, "value"),
        (f"/domain/{sid}", {"value": 7}, "value"),
        (f"/domain/{sid}", {"value": "x.io", "protocol": "gopher"}, "protocol"),
        (f"/pathname/{sid}/{did}", {"value": "no-slash"}, "value"),
        (f"/pathname/{sid}/{did}", {}, "value"),
        (f"/pathname/{sid}/not-a-uuid", {"value": "/x"}, "domainId"),
        (f"/core-pathname/{sid}", {"value": "users"}, "value"),
    ):
        bad = client.post(path, json=payload, headers=user.headers)
        assert bad.status_code == 400, (path, payload, bad.text)
        assert field in bad.json()["fieldErrors"], (path, payload, bad.json())


def test_standalone_request_and_response(client: TestClient, user: AUser) -> None:
    request = client.post(
        "/request",
        json={"headers": '{"accept": "*/*"}', "body": "raw text", "queryParams": {"a": ["1", "2"]}},
        headers=user.headers,
    )
    assert request.status_code == 201, request.text
    got = client.get(f"/request/{request.json()['id']}", headers=user.headers)
    assert got.json() == request.json()
    assert got.json()["headers"] == '{"accept": "*/*"}'
    assert got.json()["body"] == "raw text"
    assert got.json()["queryParams"] == {"a": ["1", "2"]}
    assert got.json()["trafficSourceId"] is None

    response = client.post(
        "/responses", json={"headers": [["a", "b"]], "body": None}, headers=user.headers
    )
    assert response.status_code == 201
    assert response.json()["body"] is None and response.json()["bodyPreview"] is None
    assert (
        client.get(f"/responses/{response.json()['id']}", headers=user.headers).status_code == 200
    )
    unknown = client.get("/response/0197548f-0e8e-7550-b283-f26fd98a9423", headers=user.headers)
    assert unknown.status_code == 404
    assert client.get("/response/nope", headers=user.headers).status_code == 400


def test_deletes_cascade_and_answer_404_afterwards(
    client: TestClient, user: AUser, rows: Callable[[], dict[str, int]]
) -> None:
    sid = create_source(client, user).id
    empty = rows()
    records = [compose(client, user.headers, sid, pathnameUrl=f"/p{i % 2}") for i in range(4)]
    core = client.post(
        f"/core-pathname/{sid}", json={"value": "/u/:id"}, headers=user.headers
    ).json()
    request = client.post("/request", json={"headers": {}}, headers=user.headers).json()
    log = client.post(
        f"/core-log/{sid}",
        json={
            "status": 200,
            "method": "GET",
            "elapsedTime": 1,
            "corePathnameId": core["id"],
            "requestId": request["id"],
        },
        headers=user.headers,
    )
    assert log.status_code == 201
    counts = rows()
    assert counts["http_traffic"] == 4 and counts["requests"] == 5

    # One traffic row goes with its request and response; a second DELETE is a 404.
    first = records[0]["id"]
    assert client.delete(f"/http-traffic/{first}", headers=user.headers).status_code == 204
    assert client.delete(f"/http-traffic/{first}", headers=user.headers).status_code == 404
    after = rows()
    assert (after["http_traffic"], after["requests"], after["responses"]) == (3, 4, 3)

    # A pathname goes with its traffic (the original answered 500 with children).
    assert (
        client.delete(f"/pathname/{records[1]['pathnameId']}", headers=user.headers).status_code
        == 204
    )
    after = rows()
    assert (after["pathnames"], after["http_traffic"], after["requests"]) == (1, 1, 2)

    assert client.delete(f"/core-pathname/{core['id']}", headers=user.headers).status_code == 204
    assert rows()["core_logs"] == 0 and rows()["requests"] == 1

    assert (
        client.delete(f"/domains/{records[2]['domainId']}", headers=user.headers).status_code == 204
    )
    assert rows()["http_traffic"] == 0

    compose(client, user.headers, sid)
    client.post(f"/traffic-source/{sid}/ingest-keys", json={"name": "k"}, headers=user.headers)
    deleted = client.delete(f"/traffic-source/{sid}", headers=user.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert rows() == empty
    assert client.get(f"/traffic-source/{sid}", headers=user.headers).status_code == 404
    assert client.delete(f"/traffic-source/{sid}", headers=user.headers).status_code == 404


def test_concurrent_get_or_create_makes_one_row(client: TestClient, user: AUser) -> None:
    """Threads storing the same new domain and pathname at once, each in its own transaction
    (as separate workers would, bypassing the in-process writer): one row each."""
    from logharbor.common.ids import new_id
    from logharbor.common.timestamps import utcnow
    from logharbor.db.tables import core_pathnames, domains, pathnames
    from logharbor.db.writer import WriteTx
    from logharbor.ingest.clickhouse_store import ClickHouseRecordStore
    from logharbor.ingest.compose import prepare_record
    from logharbor.ingest.store import PendingExchange, SqlRecordStore
    from logharbor.traffic import queries
    from logharbor.traffic.normalize import IngestConfig

    sid = create_source(client, user).id
    db = client.app.state.db  # type: ignore[attr-defined]
    config = IngestConfig.from_settings(client.app.state.settings)  # type: ignore[attr-defined]
    record = prepare_record(
        {
            "domainUrl": "https://race.example.com",
            "pathnameUrl": "/race",
            "status": 200,
            "method": "get",
            "elapsedTime": 1,
            "requestHeaders": {},
            "responseHeaders": {},
        },
        config,
    )
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            pending = PendingExchange(new_id(), new_id(), new_id(), utcnow(), record)
            # A store of its own, as each worker process has (its name cache is its own).
            store = SqlRecordStore() if db.events is None else ClickHouseRecordStore(db.events)
            with db.write() as conn:
                tx = WriteTx(conn)
                store.insert_exchanges(tx, sid, [pending])
                queries.get_or_create_core_pathname(conn, sid, "/race/:id")
                tx.flush_staged()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    # And through the API, concurrently from threads.
    def post() -> None:
        barrier.wait()
        response = client.post(
            f"/http-traffic-record/{sid}",
            json={**body(), "domainUrl": "https://race2.example.com"},
            headers=user.headers,
        )
        if response.status_code != 201:
            errors.append(AssertionError(response.text))

    threads = [threading.Thread(target=post) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    with db.read() as conn:
        for table in (domains, pathnames, core_pathnames):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == (
                1 if table is core_pathnames else 2
            )
    listed = client.get(f"/http-traffic-record/{sid}", headers=user.headers).json()
    assert listed["meta"]["totalItems"] == 2 * threads_count


def test_openapi_describes_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    expected = {
        ("post", "/traffic-source"),
        ("get", "/traffic-source"),
        ("get", "/traffic-source/{trafficSourceId}"),
        ("put", "/traffic-source/{trafficSourceId}"),
        ("delete", "/traffic-source/{trafficSourceId}"),
        ("post", "/traffic-source/{trafficSourceId}/shares"),
        ("get", "/traffic-source/{trafficSourceId}/shares"),
        ("delete", "/traffic-source/{trafficSourceId}/shares/{userId}"),
        ("post", "/traffic-source/{trafficSourceId}/ingest-keys"),
        ("get", "/traffic-source/{trafficSourceId}/ingest-keys"),
        ("delete", "/traffic-source/{trafficSourceId}/ingest-keys/{keyId}"),
        ("post", "/domain/{id}"),
        ("get", "/domain/{id}"),
        ("delete", "/domain/{id}"),
        ("post", "/pathname/{trafficSourceId}/{domainId}"),
        ("get", "/pathname/{trafficSourceId}/{domainId}"),
        ("delete", "/pathname/{pathnameId}"),
        ("post", "/request"),
        ("get", "/request/{requestId}"),
        ("post", "/response"),
        ("get", "/response/{responseId}"),
        ("post", "/http-traffic/{id}"),
        ("get", "/http-traffic/{id}"),
        ("delete", "/http-traffic/{id}"),
        ("post", "/http-traffic-record/{trafficSourceId}"),
        ("get", "/http-traffic-record/{trafficSourceId}"),
        ("get", "/http-traffic-record/{trafficSourceId}/{recordId}"),
        ("post", "/ingest-log"),
        ("post", "/core-pathname/{id}"),
        ("get", "/core-pathname/{id}"),
        ("delete", "/core-pathname/{id}"),
        ("post", "/core-log/{trafficSourceId}"),
        ("get", "/core-log/{trafficSourceId}"),
    }
    documented = {(method, path) for path, item in spec["paths"].items() for method in item}
    assert expected <= documented, expected - documented
    # Strict OpenAPI tools refuse two templates that differ only in a parameter's name.
    shapes = [re.sub(r"\{[^}]+\}", "{}", path) for path in spec["paths"]]
    assert len(shapes) == len(set(shapes))
    # Aliases route but stay out of the docs.
    assert not any(
        path.startswith(("/traffic-sources", "/http-traffics", "/domains"))
        for path in spec["paths"]
    )
    for method, path in expected:
        operation = spec["paths"][path][method]
        assert operation.get("description") or operation.get("summary"), (method, path)
        if (method in ("post", "put") and path not in ("/ingest-log",)) or path == "/ingest-log":
            assert "requestBody" in operation, (method, path)
        success = next(code for code in operation["responses"] if code.startswith("2"))
        if method != "delete":
            assert "application/json" in operation["responses"][success]["content"], (method, path)
    compose_schema = spec["components"]["schemas"]["ComposeIn"]["properties"]
    assert {"domainUrl", "pathnameUrl", "requestHeaders", "elapsedTime"} <= set(compose_schema)
    assert client.get("/docs").status_code == 200
