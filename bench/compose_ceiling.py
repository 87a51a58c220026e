"""A ceiling for compose: LogHarbor's own app and stack, storing nothing.

``POST /ceiling`` runs what compose runs before it hands the record to the writer (the app's
middleware stack and its ingest lane, the content type checked, the body parsed and validated
into ``ComposeIn`` by ``parse_json_body``, then turned into the pipeline's record by
``exchange_of`` and normalized and masked by ``normalize_exchange``) and answers 201 with a
small JSON. No token check, no database, no writer thread. Whatever storage design sits behind
compose, it cannot go faster than this on the same server, so ``ingest_http.py`` prints it
beside the bare ASGI app and compose itself.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from logharbor.app import create_app_from_env
from logharbor.common.ids import new_id
from logharbor.ingest.compose import (
    check_json_content_type,
    exchange_of,
    ingest_config,
    parse_json_body,
)
from logharbor.ingest.lane import IngestLane, arkyn_errors
from logharbor.ingest.normalize import normalize_exchange
from logharbor.traffic.schemas import ComposeIn


async def ceiling(request: Request) -> Response:
    check_json_content_type(request)
    item = parse_json_body(await request.body(), ComposeIn)
    record = normalize_exchange(exchange_of(item), ingest_config(request))
    answer = {"id": new_id(), "pathname": record.pathname, "status": record.status}
    return Response(orjson.dumps(answer), status_code=201, media_type="application/json")


def create_app() -> Any:
    app = create_app_from_env()
    # Served by the app's own ingest lane, first in its table, as compose is: the same
    # middlewares in front, the same matching, the same error envelope.
    route = Route("/ceiling", arkyn_errors(ceiling), methods=["POST"])
    lanes = [m for m in app.user_middleware if m.cls is IngestLane]
    if len(lanes) != 1:
        raise RuntimeError("the app no longer has one IngestLane: update compose_ceiling.py")
    lanes[0].kwargs["routes"] = [route, *lanes[0].kwargs["routes"]]
    return app
