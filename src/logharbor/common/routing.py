"""Route classes that know their API family, and the checks that must run before the body is read.

FastAPI parses the JSON body before it solves dependencies, so a request with no token and a
broken body would be answered "invalid body". Both APIs document the opposite order (auth first,
then content type, then the body), so these checks run in the route handler itself.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from logharbor.common.errors import UnsupportedMediaType

# Set by logharbor.auth.deps at import time; kept here as a hook to avoid an import cycle.
AUTHENTICATORS: set[Callable[..., Any]] = set()
PRE_AUTHENTICATE: list[Callable[[Request], Any]] = []

ERROR_MESSAGES_KEY = "x-error-messages"


def error_messages(**by_kind: str) -> dict[str, Any]:
    """``openapi_extra`` for a route whose API documents its own sentence per error kind."""
    return {ERROR_MESSAGES_KEY: by_kind}


def _uses_any(dependant: Dependant, targets: set[Callable[..., Any]]) -> bool:
    if dependant.call in targets:
        return True
    return any(_uses_any(sub, targets) for sub in dependant.dependencies)


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
