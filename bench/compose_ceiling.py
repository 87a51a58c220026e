"""A ceiling for compose: LogHarbor's own app and stack, storing nothing.

``POST /ceiling`` runs what compose runs before it hands the record to the writer (the app's
middleware stack, the body parsed and validated into ``ComposeIn``, then normalized and masked
by ``prepare_compose``) and answers 201 with a small JSON. No token check, no database, no
writer thread. Whatever storage design sits behind compose, it cannot go faster than this on
the same server, so ``ingest_http.py`` prints it beside the bare ASGI app and compose itself.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from logharbor.app import create_app_from_env
from logharbor.common.ids import new_id
from logharbor.common.routing import json_body
from logharbor.traffic.ingest import IngestConfig, prepare_compose
from logharbor.traffic.schemas import ComposeIn


def create_app() -> Any:
    app = create_app_from_env()
    config = IngestConfig.from_settings(app.state.settings)

    async def ceiling(request: Request) -> Response:
        record = prepare_compose(await json_body(request, ComposeIn), config)
        answer = {"id": new_id(), "pathname": record.pathname, "status": record.status}
        return Response(orjson.dumps(answer), status_code=201, media_type="application/json")

    # First in the router, so that matching costs one regex, as the direct lane's does.
    app.router.routes.insert(0, Route("/ceiling", ceiling, methods=["POST"]))
    return app
