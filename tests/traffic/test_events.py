"""Every traffic ingest path publishes its events in the transaction that stores the rows:
the statistics rollups and the exceptions see each stored record once, and a failed call none."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fixtures import event_rows
from fixtures.records import body, compose
from fixtures.sources import Source, ingest_key
from fixtures.users import AUser, bearer


def _seen(client: TestClient) -> tuple[set[int], int]:
    from logharbor.db.tables import exceptions

    db = client.app.state.db  # type: ignore[attr-defined]
    with db.read() as conn:
        fatal = conn.execute(select(func.coalesce(func.sum(exceptions.c.count), 0))).scalar_one()
    return event_rows.rollup_counts(db), int(fatal)


def test_each_ingest_path_publishes_once(client: TestClient, user: AUser, source: Source) -> None:
    sid = source.id
    record = compose(client, user.headers, sid, status=500, responseBody={"error": "boom"})
    key = ingest_key(client, user, sid)
    assert client.post("/ingest-log", json=body(), headers=bearer(key)).status_code == 201
    request = client.post("/request", json={"headers": {}}, headers=user.headers).json()
    response = client.post("/response", json={"headers": {}}, headers=user.headers).json()
    link = {
        "status": 200,
        "method": "GET",
        "elapsedTime": 3,
        "domainId": record["domainId"],
        "pathnameId": record["pathnameId"],
        "requestId": request["id"],
        "responseId": response["id"],
    }
    traffic = client.post(f"/http-traffic/{sid}", json=link, headers=user.headers)
    assert traffic.status_code == 201
    core = client.post(f"/core-pathname/{sid}", json={"value": "/u/:id"}, headers=user.headers)
    core_log = client.post(
        f"/core-log/{sid}",
        json={
            "status": 503,
            "method": "GET",
            "elapsedTime": 1,
            "corePathnameId": core.json()["id"],
        },
        headers=user.headers,
    )
    assert core_log.status_code == 201

    assert _seen(client) == ({3}, 2)

    # Failed calls publish nothing.
    unknown = "0197548f-0e8e-7550-b283-f26fd98a9423"
    failed = client.post(
        "/ingest-log", json=body(status=500, trafficSourceId=unknown), headers=user.headers
    )
    assert failed.status_code == 404
    relink = client.post(f"/http-traffic/{sid}", json={**link, "status": 500}, headers=user.headers)
    assert relink.status_code == 409
    assert _seen(client) == ({3}, 2)
