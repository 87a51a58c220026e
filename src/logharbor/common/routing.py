"""Route classes that know their API family, and the checks that must run before the body is read.

FastAPI parses the JSON body before it solves dependencies, so a request with no token and a
broken body would be answered "invalid body". Both APIs document the opposite order (auth first,
then content type, then the body), so these checks run in the route handler itself.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

from fastapi import APIRouter, FastAPI, Path, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from logharbor.common.errors import UnsupportedMediaType

ERROR_MESSAGES_KEY = "x-error-messages"

EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])


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


@dataclass(frozen=True)
class Authentication:
    """How a family route authenticates before it reads the body: a route that depends on
    ``dependency`` (directly or through another dependency) gets ``resolve(request)`` run first.

    It comes from auth, which common must not import, so the app hands it over where it is
    created (``install_authentication``) rather than auth registering itself on import.
    """

    dependency: Callable[..., Any]
    resolve: Callable[[Request], Any]


def install_authentication(app: FastAPI, authentication: Authentication) -> None:
    app.state.authentication = authentication


def _authentication(request: Request) -> Authentication:
    authentication = getattr(request.app.state, "authentication", None)
    if not isinstance(authentication, Authentication):
        # A family route must never run unauthenticated checks in the wrong order quietly.
        raise RuntimeError("family routes need install_authentication(app, ...) in create_app")
    return authentication


def _uses(dependant: Dependant, target: Callable[..., Any]) -> bool:
    if dependant.call is target:
        return True
    return any(_uses(sub, target) for sub in dependant.dependencies)


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
    error_family: ClassVar[str] = "arkyn"
    # PromptCrafter documents 415 for a missing Content-Type too; Arkyn collectors may omit it.
    content_type_required: ClassVar[bool] = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_json = self.body_field is not None
        # Per authentication (one per app in practice): walking the dependency tree per request
        # would cost the hot path.
        needs_auth: dict[Callable[..., Any], bool] = {}

        async def guarded(request: Request) -> Response:
            authentication = _authentication(request)
            needed = needs_auth.get(authentication.dependency)
            if needed is None:
                needed = _uses(self.dependant, authentication.dependency)
                needs_auth[authentication.dependency] = needed
            if needed:
                await run_in_threadpool(authentication.resolve, request)
            if takes_json and request.method in ("POST", "PUT", "PATCH"):
                content_type = request.headers.get("content-type")
                if content_type is None:
                    if self.content_type_required:
                        raise UnsupportedMediaType()
                elif not is_json_content_type(content_type):
                    raise UnsupportedMediaType()
            return await handler(request)

        return guarded


class ArkynRoute(FamilyRoute):
    error_family = "arkyn"


class PromptCrafterRoute(FamilyRoute):
    error_family = "promptcrafter"
    content_type_required = True
