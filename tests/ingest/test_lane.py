"""The direct lane answers exactly as the framework's own routing does, and really is taken."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from fixtures.records import body
from fixtures.sources import Source
from fixtures.users import AUser, bearer
from logharbor.app import create_app
from logharbor.common.ids import new_id
from logharbor.ingest.lane import IngestLane
from logharbor.settings import Settings

VOLATILE = {"id", "createdAt", "requestId", "responseId", "domainId", "pathnameId"}


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "*" if k in VOLATILE else _stable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def test_same_answers_with_and_without_the_lane(
    client: TestClient, settings: Settings, user: AUser, source: Source
) -> None:
    seen_by_router: list[str] = []

    class RecordPaths:  # sits behind the lane: sees what the lane left to the framework
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen_by_router.append(scope["path"])
            await self.app(scope, receive, send)

    client.app.user_middleware.append(_middleware(RecordPaths))  # type: ignore[attr-defined]
    client.app.middleware_stack = None  # type: ignore[attr-defined]
    plain_app = create_app(settings)
    plain_app.user_middleware = [m for m in plain_app.user_middleware if m.cls is not IngestLane]
    sid = source.id
    json_headers = {**user.headers, "Content-Type": "application/json"}
    cases: list[tuple[str, dict[str, str], bytes]] = [
        (f"/http-traffic-record/{sid}", json_headers, json.dumps(body()).encode()),
        (f"/http-traffic-records/{sid}", json_headers, json.dumps(body(method="get")).encode()),
        ("/ingest-log", json_headers, json.dumps(body(trafficSourceId=sid)).encode()),
        ("/ingest-log", json_headers, json.dumps(body()).encode()),  # no source id
        (f"/http-traffic-record/{sid}", {}, json.dumps(body()).encode()),  # no token
        (f"/http-traffic-record/{sid}", bearer("nope"), json.dumps(body()).encode()),
        (f"/http-traffic-record/{sid}", {**user.headers, "Content-Type": "text/plain"}, b"x"),
        (f"/http-traffic-record/{sid}", json_headers, b"{not json"),
        (f"/http-traffic-record/{sid}", json_headers, b""),
        (f"/http-traffic-record/{sid}", json_headers, b"\xff\xfe"),
        (f"/http-traffic-record/{sid}", json_headers, json.dumps(body(status="x")).encode()),
        (f"/http-traffic-record/{new_id()}", json_headers, json.dumps(body()).encode()),
        ("/http-traffic-record/not-a-uuid", json_headers, json.dumps(body()).encode()),
    ]
    with TestClient(plain_app) as plain:
        for path, headers, content in cases:
            seen_by_router.clear()
            direct = client.post(path, content=content, headers=headers)
            assert seen_by_router == [], path  # the lane answered it
            framework = plain.post(path, content=content, headers=headers)
            assert direct.status_code == framework.status_code, (path, content, direct.text)
            assert _stable(direct.json()) == _stable(framework.json()), (path, content)
            assert direct.headers["content-type"] == framework.headers["content-type"]
    # Other routes still go through the framework.
    client.get(f"/http-traffic-record/{sid}", headers=user.headers)
    assert seen_by_router == [f"/http-traffic-record/{sid}"]


def _middleware(cls: type) -> Any:
    from starlette.middleware import Middleware

    return Middleware(cls)
