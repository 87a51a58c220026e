"""Route classes that know their API family, and the checks that must run before the body is read.

FastAPI parses the JSON body before it solves dependencies, so a request with no token and a
broken body would be answered "invalid body". Both APIs document the opposite order (auth first,
then content type, then the body), so these checks run in the route handler itself.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from logharbor.common.errors import UnsupportedMediaType

# Set by logharbor.auth.deps at import time; kept here as a hook to avoid an import cycle.
AUTHENTICATORS: set[Callable[..., Any]] = set()
PRE_AUTHENTICATE: list[Callable[[Request], Any]] = []
# Resolves the token without the database where it can, for routes whose write transaction
# confirms the caller (see ``direct_arguments``).
CLAIM: list[Callable[[Request], Awaitable[Any]]] = []

ERROR_MESSAGES_KEY = "x-error-messages"

EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])
ModelT = TypeVar("ModelT", bound=BaseModel)
ArgumentSolver = Callable[[Request], Awaitable[dict[str, Any]]]
_DIRECT_ARGUMENTS = "__logharbor_direct_arguments__"


def direct_arguments(solver: ArgumentSolver) -> Callable[[EndpointT], EndpointT]:
    """Call this endpoint with the keyword arguments ``solver(request)`` builds.

    For the ingest hot path, where FastAPI's generic dependency solving and response
    validation cost more than storing the record. The endpoint keeps its signature, so the
    OpenAPI docs do not change; it must return a ``Response``. The route still checks the
    token first (through ``CLAIM``: no database round trip, the endpoint's transaction
    confirms the caller) and the content type second; ``solver`` reads the body
    (``json_body``). Put it *below* the route decorator.
    """

    def register(endpoint: EndpointT) -> EndpointT:
        setattr(endpoint, _DIRECT_ARGUMENTS, solver)
        return endpoint

    return register


async def json_body(request: Request, model: type[ModelT]) -> ModelT:
    """The body validated as FastAPI would, failing with the same ``RequestValidationError``."""
    body = await request.body()
    if not body:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    try:
        return model.model_validate_json(body)
    except ValidationError:
        pass
    # Refused: decide again the way FastAPI does (stdlib json, then the model), so that the
    # verdict and its messages are FastAPI's. (pydantic's parser refuses lone surrogates as
    # malformed JSON, for one; json.loads lets the model's own check name the field.)
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
            ]
        ) from None
    except (ValueError, RecursionError):  # not UTF-8, nested too deep
        raise HTTPException(400, "There was an error parsing the body") from None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**issue, "loc": ("body", *issue["loc"])} for issue in exc.errors()]
        ) from None


def error_messages(**by_kind: str) -> dict[str, Any]:
    """``openapi_extra`` for a route whose API documents its own sentence per error kind."""
    return {ERROR_MESSAGES_KEY: by_kind}


def also_at(router: APIRouter, *paths: str) -> Callable[[EndpointT], EndpointT]:
    """Serve the route just declared on ``router`` for this endpoint at more ``paths`` too.

    Put it *above* the route decorator. The aliases (e.g. the original Arkyn server's plural
    paths) share the handler and every option of the documented route, and stay out of the
    OpenAPI docs: aliases are routing only.
    """

    def register(endpoint: EndpointT) -> EndpointT:
        route = next(
            r for r in reversed(router.routes) if isinstance(r, APIRoute) and r.endpoint is endpoint
        )
        # FastAPI always gives an APIRoute its methods; starlette's Route types them Optional.
        assert route.methods is not None
        for path in paths:
            router.add_api_route(
                path,
                endpoint,
                methods=sorted(route.methods),
                status_code=route.status_code,
                response_model=route.response_model,
                response_class=route.response_class,
                openapi_extra=route.openapi_extra,
                include_in_schema=False,
            )
        return endpoint

    return register


def path_id(description: str) -> Any:
    """The ``{id}`` segment of a path that different operations use for different ids.

    Arkyn uses ``/domain/:trafficSourceId`` to create and list, and ``/domain/:domainId`` to
    delete. OpenAPI forbids two templates that differ only in a parameter's name, so such paths
    are declared once as ``/domain/{id}`` and each operation says which id it takes.
    """
    return Path(alias="id", description=description)


def _uses_any(dependant: Dependant, targets: set[Callable[..., Any]]) -> bool:
    if dependant.call in targets:
        return True
    return any(_uses_any(sub, targets) for sub in dependant.dependencies)


@lru_cache(maxsize=256)
def is_json_content_type(value: str | None) -> bool:
    if not value:
        return False
    message = email.message.Message()
    message["content-type"] = value
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class FamilyRoute(APIRoute):
    direct_handler: Callable[[Request], Coroutine[Any, Any, Response]] | None = None
    error_family: ClassVar[str] = "arkyn"
    # PromptCrafter documents 415 for a missing Content-Type too; Arkyn collectors may omit it.
    content_type_required: ClassVar[bool] = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        needs_auth = _uses_any(self.dependant, AUTHENTICATORS)
        takes_json = self.body_field is not None
        endpoint = self.endpoint
        direct: ArgumentSolver | None = getattr(endpoint, _DIRECT_ARGUMENTS, None)

        async def guarded(request: Request) -> Response:
            if needs_auth:
                if direct is not None:
                    await CLAIM[0](request)
                else:
                    for pre_authenticate in PRE_AUTHENTICATE:
                        await run_in_threadpool(pre_authenticate, request)
            if takes_json and request.method in ("POST", "PUT", "PATCH"):
                content_type = request.headers.get("content-type")
                if content_type is None:
                    if self.content_type_required:
                        raise UnsupportedMediaType()
                elif not is_json_content_type(content_type):
                    raise UnsupportedMediaType()
            if direct is not None:
                response = await endpoint(**await direct(request))
                if not isinstance(response, Response):
                    raise TypeError(f"{endpoint.__name__} must return a Response")
                return response
            return await handler(request)

        # What DirectLane calls: the whole route, without the framework's per-request stack.
        self.direct_handler = guarded if direct is not None else None
        return guarded


class DirectLane:
    """Serves the routes marked with ``direct_arguments`` without the rest of the app's stack.

    Under load a request to FastAPI spends more in the router (it tries every included route
    in turn) and its exception and exit-stack middlewares than in a hot route itself. This
    middleware, installed inside the body-size limit, matches the few direct routes by their
    own path regex and runs their handler, rendering errors with the app's own exception
    handlers; every other request goes on as usual. The routes stay declared where they are
    (OpenAPI docs, aliases) and work the same without it. ``routers``: those holding direct
    routes, included in the app without a prefix.
    """

    def __init__(self, app: ASGIApp, routers: Sequence[APIRouter]) -> None:
        self.app = app
        self._routes = [
            route
            for router in routers
            for route in router.routes
            if isinstance(route, FamilyRoute)
            and route.direct_handler is not None
            and route.methods is not None
            and "POST" in route.methods
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route in self._routes:
                match = route.path_regex.match(scope["path"])
                if match is not None:
                    params = {
                        name: route.param_convertors[name].convert(value)
                        for name, value in match.groupdict().items()
                    }
                    await self._serve(
                        route, {**scope, "route": route, "path_params": params}, receive, send
                    )
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _serve(route: FamilyRoute, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        assert route.direct_handler is not None
        try:
            response = await route.direct_handler(request)
        except Exception as exc:
            handlers = scope["app"].exception_handlers
            handler = next((handlers[kind] for kind in type(exc).__mro__ if kind in handlers), None)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


class ArkynRoute(FamilyRoute):
    error_family = "arkyn"


class PromptCrafterRoute(FamilyRoute):
    error_family = "promptcrafter"
    content_type_required = True
