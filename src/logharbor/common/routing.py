"""Route classes that know their API family, and the checks that must run before the body is read.

FastAPI parses the JSON body before it solves dependencies, so a request with no token and a
broken body would be answered "invalid body". Both APIs document the opposite order (auth first,
then content type, then the body), so these checks run in the route handler itself.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable, Coroutine
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

from fastapi import APIRouter, Path, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from logharbor.common.errors import UnsupportedMediaType

# Set by logharbor.auth.deps at import time; kept here as a hook to avoid an import cycle.
AUTHENTICATORS: set[Callable[..., Any]] = set()
PRE_AUTHENTICATE: list[Callable[[Request], Any]] = []
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
    error_family: ClassVar[str] = "arkyn"
    # PromptCrafter documents 415 for a missing Content-Type too; Arkyn collectors may omit it.
    content_type_required: ClassVar[bool] = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        needs_auth = _uses_any(self.dependant, AUTHENTICATORS)
        takes_json = self.body_field is not None

        async def guarded(request: Request) -> Response:
            if needs_auth:
                for pre_authenticate in PRE_AUTHENTICATE:
                    await run_in_threadpool(pre_authenticate, request)
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
