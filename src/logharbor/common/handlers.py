"""Exception handlers: every error leaves in its family's envelope, never as a traceback."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import RouteContext, iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from logharbor.common import errors
from logharbor.common.routing import ERROR_MESSAGES_KEY

log = logging.getLogger("logharbor")

_HTTP_ERRORS: dict[int, type[errors.LogHarborError]] = {
    400: errors.BadRequest,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    415: errors.UnsupportedMediaType,
    503: errors.ServiceUnavailable,
}


class MethodNotAllowed(errors.LogHarborError):
    status_code = 405
    name = "MethodNotAllowed"
    kind = "method"
    default_message = "Method not allowed"


def render(
    request: Request, error: errors.LogHarborError, route: object | None = None
) -> JSONResponse:
    """``error`` in the envelope of ``route``'s family (by default the route that matched)."""
    route = route or request.scope.get("route")
    family = getattr(route, "error_family", None)
    if family == "promptcrafter":
        extra: dict[str, Any] = getattr(route, "openapi_extra", None) or {}
        message = error.message
        if error.generic:
            message = extra.get(ERROR_MESSAGES_KEY, {}).get(error.kind, message)
        return JSONResponse({"error": message}, status_code=errors.promptcrafter_status(error))
    if family is None:
        return JSONResponse(errors.routeless_body(error), status_code=error.status_code)
    return JSONResponse(errors.arkyn_body(error), status_code=error.status_code)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_error(issues: Sequence[Mapping[str, Any]]) -> errors.BadRequest:
    """pydantic's (or FastAPI's) validation issues as the one BadRequest every route answers:
    each field named by its dotted path with its first message, a JSON syntax error as
    "Malformed JSON body"."""
    field_errors: dict[str, str] = {}
    message = "Invalid input data"
    for issue in issues:
        if issue.get("type") == "json_invalid":
            message = "Malformed JSON body"
            field_errors["body"] = (
                f"Invalid JSON: {issue.get('ctx', {}).get('error', 'parse error')}"
            )
            continue
        name = _field_name(tuple(issue.get("loc", ())))
        text = str(issue.get("msg", "invalid"))
        # pydantic prefixes messages of custom validators with "Value error, ".
        field_errors.setdefault(name, text.removeprefix("Value error, "))
    return errors.BadRequest(message, field_errors=field_errors, generic=True)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return render(request, validation_error(exc.errors()))


async def _on_logharbor_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.LogHarborError)
    return render(request, exc)


def _routes_at(request: Request, path: str) -> list[RouteContext]:
    """Every route (of every included router) whose path template matches ``path``, whatever
    its methods."""
    root_path = request.scope.get("root_path", "")
    route_path = path.removeprefix(root_path) if root_path else path
    return [
        context
        for context in iter_route_contexts(request.app.routes)
        if getattr(context, "path_regex", None) is not None and context.path_regex.match(route_path)
    ]


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    path = request.scope["path"]
    if exc.status_code == 404 and request.scope.get("route") is None:
        # The app never redirects (``redirect_slashes=False``: a client may follow a redirect
        # with another method), so "/logs/" is a 404, in the envelope of the family of "/logs".
        near = _routes_at(request, path.rstrip("/")) if path.endswith("/") else []
        route = near[0].original_route if near else None
        return render(request, errors.NotFound("Route not found"), route)
    if exc.status_code == 405:
        # Starlette names the methods of the first route that matched the path only.
        methods = {m for route in _routes_at(request, path) for m in route.methods or ()}
        response = render(request, MethodNotAllowed())
        response.headers["Allow"] = ", ".join(sorted(methods))
        return response
    cls = _HTTP_ERRORS.get(exc.status_code, errors.BadRequest)
    detail = exc.detail if isinstance(exc.detail, str) else None
    # FastAPI's answer to a body it could not decode (e.g. invalid UTF-8): name the field.
    unreadable = exc.status_code == 400 and detail == "There was an error parsing the body"
    field_errors = {"body": "Must be valid UTF-8 JSON"} if unreadable else None
    response = render(request, cls(detail, field_errors=field_errors, generic=True))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render(request, errors.LogHarborError())


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(errors.LogHarborError, _on_logharbor_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
