"""The ingest lane: a plain ASGI app in front of the FastAPI app for the ingest POSTs.

Under load a request to FastAPI spends more in its router (which tries every route in turn),
its dependency solving and its exception and exit-stack middlewares than in storing a record.
The ingest endpoints need none of that: they are plain Starlette endpoints that check their
token, content type and body themselves (``ingest.compose``, ``ingest.otlp_routes``). This app
matches them by Starlette's own ``Route.matches`` and hands every other request to the app
behind it, untouched. The same endpoints are declared to FastAPI too (``ingest.routes``), so
the OpenAPI docs describe them, and they answer the same whichever way they are reached.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import wraps

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from logharbor.common.errors import LogHarborError, ServiceUnavailable, arkyn_body

log = logging.getLogger("logharbor.ingest")

Endpoint = Callable[[Request], Awaitable[Response]]

# What an exporter or collector waits before it retries a 503 (the writer's queue was full).
RETRY_AFTER_SECONDS = 1


def arkyn_errors(endpoint: Endpoint) -> Endpoint:
    """Errors leave ``endpoint`` in the Arkyn envelope, never as a traceback."""

    @wraps(endpoint)
    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except LogHarborError as exc:
            error = exc
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            error = LogHarborError()
        response = JSONResponse(arkyn_body(error), status_code=error.status_code)
        if isinstance(error, ServiceUnavailable):
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    return answer


class IngestLane:
    """Serves ``routes`` (POST only) itself; everything else goes to ``app``."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = list(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    await route.handle({**scope, **child_scope}, receive, send)
                    return
        await self.app(scope, receive, send)
