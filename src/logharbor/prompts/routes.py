"""The PromptCrafter API: prompts, their logs, search, plus LogHarbor's versions, stats and pages.

Statuses and error sentences are those of promptcrafter-original.md §1 (each endpoint documents
its own wording). Checks run in the documented order: route, token (401), content type (415),
input and id format (400), existence (404), ownership (403). Ids are shown as ``prompt<digits>``,
``log<digits>``, ``user<digits>``: the UUIDv7 behind them as one integer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from logharbor.auth.deps import CurrentPrincipal, CurrentUser, Db
from logharbor.common.errors import BadRequest, Forbidden, LogHarborError, NotFound
from logharbor.common.ids import from_prefixed, to_prefixed
from logharbor.common.pagination import PageRequest, Paginated, optional_page_request
from logharbor.common.routing import PromptCrafterRoute, error_messages
from logharbor.prompts import queries, search, services
from logharbor.prompts.queries import Listing
from logharbor.prompts.schemas import (
    LabelIn,
    LabelOut,
    LogIn,
    LogOut,
    LogPatch,
    MessageOut,
    PromptIn,
    PromptOut,
    PromptPatch,
    PromptStatsOut,
    ResolvedPromptOut,
    VersionOut,
    log_json,
    prompt_json,
)
from logharbor.prompts.services import LABEL_INVALID, LABEL_NOT_FOUND, VERSION_NOT_FOUND

log = logging.getLogger("logharbor")

# The sentences of promptcrafter-original.md §1.
TOKEN_MISSING = "Authentication token is missing."
TOKEN_INVALID = "Authentication token is expired or invalid."
UNEXPECTED = "An unexpected server error occurred."
MEDIA_TYPE = "Content-Type must be application/json"
FIELDS_INVALID = "Required fields are missing or invalid."
PARAMS_INVALID = "The request is malformed or contains invalid parameters."
PROMPT_NOT_FOUND = "No prompt found with the specified ID."
PROMPT_ID_INVALID = "The prompt ID format is invalid."
PROMPT_ID_MALFORMED = "The request is malformed or the prompt ID format is invalid."
PROMPT_FORBIDDEN = "You do not have permission to access this resource."
PROMPT_NOT_YOURS = "Prompt does not belong to the authenticated user."
PATCH_INVALID = "Submitted data is invalid."
LOG_PROMPT_NOT_FOUND = "Prompt ID does not exist or is not accessible."
LOG_ID_MALFORMED = "The request is malformed or the log ID format is invalid."
LOG_NOT_FOUND = "No log found with the specified ID."
LOG_NOT_YOURS = "Log does not belong to the authenticated user."
FILTER_ID_MALFORMED = "`promptId` missing or malformed"
FILTER_FORBIDDEN = "User is not authorized to view logs for this prompt."
FILTER_NOT_FOUND = "No logs found for the specified prompt ID."
FILTER_TOKEN = "Authentication token missing or invalid."
FILTER_UNEXPECTED = "An unexpected error occurred on the server."
QUERY_INVALID = "Missing or malformed query string."
RESOLVE_INVALID = "Name the prompt by exactly one of `id` and `title`; `label` is optional."

_STANDARD = {
    "missing_token": TOKEN_MISSING,
    "invalid_token": TOKEN_INVALID,
    "media_type": MEDIA_TYPE,
    "server": UNEXPECTED,
}
# GET /logs?promptId= (and /logs-by-prompt) documents its own 401 and 500 sentences.
_FILTER = {
    "missing_token": FILTER_TOKEN,
    "invalid_token": FILTER_TOKEN,
    "server": FILTER_UNEXPECTED,
}


def _messages(**overrides: str) -> dict[str, Any]:
    return error_messages(**{**_STANDARD, **overrides})


def _docs(**by_status: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses``: each error status with its ``{"error"}`` sentence(s)."""
    return {
        int(status.removeprefix("s")): {"model": MessageOut, "description": text}
        for status, text in by_status.items()
    }


_AUTH_DOC = f"`{TOKEN_MISSING}` / `{TOKEN_INVALID}`"


class _LogsRoute(PromptCrafterRoute):
    """A route whose 401/500 sentences change when the request filters by ``promptId``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            filtered = request.method == "GET" and (
                request.url.path == "/logs-by-prompt" or "promptId" in request.query_params
            )
            try:
                return await handler(request)
            except LogHarborError as exc:
                if filtered and exc.generic and exc.kind in _FILTER:
                    raise type(exc)(_FILTER[exc.kind], generic=False) from exc
                raise
            except Exception as exc:
                if not filtered:
                    raise
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                raise LogHarborError(FILTER_UNEXPECTED, generic=False) from exc

        return handle


router = APIRouter(route_class=PromptCrafterRoute)
logs_router = APIRouter(route_class=_LogsRoute, tags=["logs"])


# --- helpers --------------------------------------------------------------------------------


def _only_params(request: Request, allowed: set[str]) -> None:
    """Unknown or repeated query parameters are a 400 (the Postman example: ``?limit=50``)."""
    keys = [key for key, _ in request.query_params.multi_items()]
    if len(keys) != len(set(keys)) or not set(keys) <= allowed:
        raise BadRequest(PARAMS_INVALID)


def _page(request: Request) -> PageRequest | None:
    params = request.query_params
    try:
        return optional_page_request(params.get("page"), params.get("pageLimit"))
    except BadRequest as exc:
        raise BadRequest(PARAMS_INVALID, field_errors=exc.field_errors) from exc


def _listing(
    listing: Listing,
    page: PageRequest | None,
    to_json: Callable[[Mapping[Any, Any]], dict[str, Any]],
) -> JSONResponse:
    items = [to_json(row) for row in listing.rows]
    if page is None:
        return JSONResponse(items)
    return JSONResponse(page.envelope(items, listing.total or 0))


def _parse_id(prefix: str, raw: str, message: str) -> str:
    value = from_prefixed(prefix, raw)
    if value is None:
        raise BadRequest(message)
    return value


PageParam = Annotated[str | None, Query(description="LogHarbor: 1-based page; paginates.")]
PageLimitParam = Annotated[
    str | None,
    Query(alias="pageLimit", description="LogHarbor: items per page (max 100); paginates."),
]
_PAGINATION_NOTE = (
    "\n\nLogHarbor addition: with `?page=` and/or `?pageLimit=` (max 100) the answer is "
    '`{"data": [...], "meta": {"page", "pageLimit", "totalItems"}}` instead of a plain array.'
)


# --- prompts --------------------------------------------------------------------------------


@router.get(
    "/prompts",
    tags=["prompts"],
    response_model=list[PromptOut] | Paginated[PromptOut],
    openapi_extra=_messages(
        invalid=PARAMS_INVALID,
        missing_token="Authentication required.",
        invalid_token="Authentication token is invalid or has expired.",
        server="An internal server error occurred.",
    ),
    responses=_docs(
        s400=PARAMS_INVALID,
        s401="`Authentication required.` / `Authentication token is invalid or has expired.`",
    ),
    description="The caller's prompts, oldest first." + _PAGINATION_NOTE,
)
def list_prompts(
    request: Request,
    principal: CurrentUser,
    db: Db,
    page: PageParam = None,
    page_limit: PageLimitParam = None,
) -> Response:
    _only_params(request, {"page", "pageLimit"})
    paging = _page(request)
    with db.read() as conn:
        listing = queries.list_prompts(conn, principal.user_id, paging)
    return _listing(listing, paging, prompt_json)


@router.post(
    "/prompts",
    tags=["prompts"],
    status_code=201,
    response_model=PromptOut,
    openapi_extra=_messages(invalid=FIELDS_INVALID),
    responses=_docs(s400=FIELDS_INVALID, s401=_AUTH_DOC, s415=MEDIA_TYPE),
)
def create_prompt(body: PromptIn, principal: CurrentUser, db: Db) -> Response:
    """Save a prompt (title 3-100 characters; `tags` defaults to `[]`)."""
    with db.write() as conn:
        row = queries.create_prompt(
            conn,
            owner_id=principal.user_id,
            title=body.title,
            content=body.content,
            model=body.model,
            tags=body.tags or [],
        )
    return JSONResponse(prompt_json(row), status_code=201)


_ONE_PROMPT_DOCS = _docs(
    s400=PROMPT_ID_MALFORMED, s401=_AUTH_DOC, s403=PROMPT_FORBIDDEN, s404=PROMPT_NOT_FOUND
)


@router.get(
    "/prompts/resolve",
    tags=["prompts"],
    response_model=ResolvedPromptOut,
    openapi_extra=_messages(invalid=RESOLVE_INVALID),
    responses=_docs(
        s400=f"`{RESOLVE_INVALID}` / `{LABEL_INVALID}`",
        s401=_AUTH_DOC,
        s404=f"`{PROMPT_NOT_FOUND}` / `{LABEL_NOT_FOUND}`",
    ),
    description=(
        "LogHarbor addition, what apps fetch their prompts by (the collector's `prompt()`): "
        "one of the caller's prompts by `id` or exact `title`, at the version its `label` "
        "points at, or at its current version without one. An ingest key may call it for the "
        "prompts of its traffic source's owner. Another user's prompt is a 404, as is a label "
        "the prompt does not have. The answer's `ETag` header, sent back in `If-None-Match`, "
        "gets a 304 while the version served is unchanged."
    ),
)
def resolve_prompt(
    request: Request,
    principal: CurrentPrincipal,
    db: Db,
    id: Annotated[str | None, Query(description="The prompt's id")] = None,
    title: Annotated[str | None, Query(description="The prompt's exact title")] = None,
    label: Annotated[str | None, Query(description="A label of the prompt")] = None,
) -> Response:
    _only_params(request, {"id", "title", "label"})
    if (id is None) == (title is None) or "\x00" in (title or ""):
        raise BadRequest(RESOLVE_INVALID)
    if label is not None:
        services.check_label(label)
    body = services.resolve_prompt(
        db,
        principal,
        prompt_id=_parse_id("prompt", id, PROMPT_ID_MALFORMED) if id is not None else None,
        title=title,
        label=label,
        not_found=PROMPT_NOT_FOUND,
    )
    # Apps re-fetch their prompts every minute; most answers are "unchanged".
    etag = f'"{body["etag"]}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(body, headers={"ETag": etag})


@router.get(
    "/prompts/{id}",
    tags=["prompts"],
    response_model=PromptOut,
    openapi_extra=_messages(),
    responses=_ONE_PROMPT_DOCS,
)
def get_prompt(id: str, principal: CurrentUser, db: Db) -> Response:
    """One of the caller's prompts."""
    prompt_id = _parse_id("prompt", id, PROMPT_ID_MALFORMED)
    row = services.read_prompt(
        db, principal, prompt_id, forbidden=PROMPT_FORBIDDEN, not_found=PROMPT_NOT_FOUND
    )
    return JSONResponse(prompt_json(row))


@router.patch(
    "/prompts/{id}",
    tags=["prompts"],
    response_model=PromptOut,
    openapi_extra=_messages(invalid=PATCH_INVALID),
    responses=_docs(
        s400=f"`{PROMPT_ID_INVALID}` / `{PATCH_INVALID}`",
        s401=_AUTH_DOC,
        s403=PROMPT_NOT_YOURS,
        s404=PROMPT_NOT_FOUND,
        s415=MEDIA_TYPE,
    ),
)
def update_prompt(id: str, body: PromptPatch, principal: CurrentUser, db: Db) -> Response:
    """Change any of `title`, `content`, `model`, `tags` (a given `tags` replaces the list).

    LogHarbor addition: a PATCH that changes anything keeps the replaced state as a version
    (`GET /prompts/{id}/versions`) and bumps `version`; `{}` or identical values change nothing,
    not even `updatedAt`.
    """
    prompt_id = _parse_id("prompt", id, PROMPT_ID_INVALID)
    changes = body.model_dump(exclude_unset=True)
    with db.write() as conn:
        row = services.owned(
            queries.get_prompt(conn, prompt_id, lock="update"),
            principal,
            forbidden=PROMPT_NOT_YOURS,
            not_found=PROMPT_NOT_FOUND,
        )
        row = queries.update_prompt(conn, row, changes)
    return JSONResponse(prompt_json(row))


@router.delete(
    "/prompts/{id}",
    tags=["prompts"],
    status_code=204,
    response_class=Response,
    openapi_extra=_messages(),
    responses=_docs(
        s400=PROMPT_ID_INVALID, s401=_AUTH_DOC, s403=PROMPT_NOT_YOURS, s404=PROMPT_NOT_FOUND
    ),
)
def delete_prompt(id: str, principal: CurrentUser, db: Db) -> Response:
    """Delete a prompt together with its logs and versions."""
    prompt_id = _parse_id("prompt", id, PROMPT_ID_INVALID)
    with db.write() as conn:
        services.owned(
            queries.get_prompt(conn, prompt_id, lock="update"),
            principal,
            forbidden=PROMPT_NOT_YOURS,
            not_found=PROMPT_NOT_FOUND,
        )
        queries.delete_prompt(conn, prompt_id)
    services.forget_prompt_of_calls(db, prompt_id)
    return Response(status_code=204)


@router.get(
    "/prompts/{id}/versions",
    tags=["prompts"],
    response_model=list[VersionOut] | Paginated[VersionOut],
    openapi_extra=_messages(invalid=PARAMS_INVALID),
    responses=_ONE_PROMPT_DOCS,
    description=(
        "LogHarbor addition: every version of the prompt, oldest first, the current one last "
        "with `current: true`. A version is the prompt's title, content, model and tags between "
        "two PATCHes that changed them; a log's `promptVersion` names one." + _PAGINATION_NOTE
    ),
)
def list_versions(
    id: str,
    request: Request,
    principal: CurrentUser,
    db: Db,
    page: PageParam = None,
    page_limit: PageLimitParam = None,
) -> Response:
    paging = _page(request)
    prompt_id = _parse_id("prompt", id, PROMPT_ID_MALFORMED)
    items = services.prompt_versions(
        db, principal, prompt_id, forbidden=PROMPT_FORBIDDEN, not_found=PROMPT_NOT_FOUND
    )
    if paging is None:
        return JSONResponse(items)
    window = items[paging.offset : paging.offset + paging.page_limit]
    return JSONResponse(paging.envelope(window, len(items)))


_LABEL_DOCS = _docs(
    s400=f"`{PROMPT_ID_MALFORMED}` / `{LABEL_INVALID}` / `{VERSION_NOT_FOUND}`",
    s401=_AUTH_DOC,
    s403=PROMPT_NOT_YOURS,
    s404=f"`{PROMPT_NOT_FOUND}` / `{LABEL_NOT_FOUND}`",
)


@router.put(
    "/prompts/{id}/labels/{label}",
    tags=["prompts"],
    response_model=LabelOut,
    openapi_extra=_messages(invalid=FIELDS_INVALID),
    responses=_LABEL_DOCS,
    description=(
        "LogHarbor addition: point a label (`production`, `staging`: 1-50 of a-z, 0-9, _ and -) "
        "at one existing version of the prompt, creating the label or moving it. Apps that "
        "fetch the prompt by that label get that version from their next refresh on."
    ),
)
def set_label(id: str, label: str, body: LabelIn, principal: CurrentUser, db: Db) -> Response:
    prompt_id = _parse_id("prompt", id, PROMPT_ID_MALFORMED)
    services.check_label(label)
    services.set_label(
        db,
        principal,
        prompt_id,
        label,
        body.version,
        forbidden=PROMPT_NOT_YOURS,
        not_found=PROMPT_NOT_FOUND,
    )
    body_out = {"promptId": to_prefixed("prompt", prompt_id), "label": label}
    return JSONResponse({**body_out, "version": body.version})


@router.delete(
    "/prompts/{id}/labels/{label}",
    tags=["prompts"],
    status_code=204,
    response_class=Response,
    openapi_extra=_messages(),
    responses=_LABEL_DOCS,
    description="LogHarbor addition: remove a label from the prompt (the versions stay).",
)
def delete_label(id: str, label: str, principal: CurrentUser, db: Db) -> Response:
    prompt_id = _parse_id("prompt", id, PROMPT_ID_MALFORMED)
    services.check_label(label)
    services.delete_label(
        db, principal, prompt_id, label, forbidden=PROMPT_NOT_YOURS, not_found=PROMPT_NOT_FOUND
    )
    return Response(status_code=204)


@router.get(
    "/prompts/{id}/stats",
    tags=["prompts"],
    response_model=PromptStatsOut,
    openapi_extra=_messages(),
    responses=_ONE_PROMPT_DOCS,
    description=(
        "LogHarbor addition: how the prompt's logs scored: count, scored count, average and "
        'distribution of `score` ("0" to "10"), overall, per `modelUsed` (most logs first) '
        "and per prompt version."
    ),
)
def prompt_stats(id: str, principal: CurrentUser, db: Db) -> Response:
    prompt_id = _parse_id("prompt", id, PROMPT_ID_MALFORMED)
    stats = services.prompt_score_stats(
        db, principal, prompt_id, forbidden=PROMPT_FORBIDDEN, not_found=PROMPT_NOT_FOUND
    )
    return JSONResponse(stats)


# --- search ---------------------------------------------------------------------------------


@router.get(
    "/search",
    tags=["prompts"],
    response_model=list[PromptOut] | Paginated[PromptOut],
    openapi_extra=_messages(invalid=QUERY_INVALID),
    responses=_docs(s400=f"`{QUERY_INVALID}` / `{PARAMS_INVALID}`", s401=_AUTH_DOC),
    description=(
        "Search the caller's prompts. Each whitespace-separated term must occur in the title, "
        "the content or a tag, as a substring, ignoring case and accents (`cafe` finds `Café`, "
        "`photo` finds `photosynthesis`; any script). Prompts whose title holds more of the "
        f"terms come first, then insertion order. At most {search.MAX_TERMS} terms and "
        f"{search.MAX_QUERY_CHARS} characters." + _PAGINATION_NOTE
    ),
)
def search_prompts(
    request: Request,
    principal: CurrentUser,
    db: Db,
    q: Annotated[str | None, Query(description="The search terms")] = None,
    page: PageParam = None,
    page_limit: PageLimitParam = None,
) -> Response:
    _only_params(request, {"q", "page", "pageLimit"})
    paging = _page(request)
    query = q or ""
    terms = search.parse_terms(query)
    if (
        not terms
        or len(terms) > search.MAX_TERMS
        or len(query) > search.MAX_QUERY_CHARS
        or "\x00" in query
    ):
        raise BadRequest(QUERY_INVALID)
    with db.read() as conn:
        listing = queries.search_prompts(conn, principal.user_id, terms, paging)
    return _listing(listing, paging, prompt_json)


# --- logs -----------------------------------------------------------------------------------


@logs_router.post(
    "/logs",
    status_code=201,
    response_model=LogOut,
    response_model_exclude_none=True,
    openapi_extra=_messages(invalid=FIELDS_INVALID),
    responses=_docs(
        s400=FIELDS_INVALID, s401=_AUTH_DOC, s404=LOG_PROMPT_NOT_FOUND, s415=MEDIA_TYPE
    ),
)
def create_log(body: LogIn, principal: CurrentUser, db: Db) -> Response:
    """Record an output of one of the caller's prompts (`score`: integer 0-10, optional).

    Compatibility: `model` is accepted in place of `modelUsed` (the original OpenAPI file's
    name). LogHarbor addition: the log records `promptVersion`, by default the prompt's current
    version; an earlier one may be given.
    """
    prompt_id = from_prefixed("prompt", body.promptId)
    with db.write() as conn:
        # Shared lock: the prompt cannot be deleted between this check and the insert.
        prompt = queries.get_prompt(conn, prompt_id, lock="share") if prompt_id else None
        if prompt is None or prompt["owner_id"] != principal.user_id:
            raise NotFound(LOG_PROMPT_NOT_FOUND)
        version = body.promptVersion or prompt["version"]
        if version > prompt["version"]:
            raise BadRequest(
                FIELDS_INVALID, field_errors={"promptVersion": "no such version of the prompt"}
            )
        row = queries.create_log(
            conn,
            prompt_id=prompt["id"],
            prompt_version=version,
            output=body.output,
            model_used=body.modelUsed,
            notes=body.notes,
            score=body.score,
        )
    return JSONResponse(log_json(row), status_code=201)


def _logs_of_prompt(
    raw_id: str | None, principal: CurrentUser, db: Db, paging: PageRequest | None
) -> Response:
    prompt_id = from_prefixed("prompt", raw_id) if raw_id else None
    if prompt_id is None:
        raise BadRequest(FILTER_ID_MALFORMED)
    listing = services.prompt_logs(
        db, principal, prompt_id, paging, forbidden=FILTER_FORBIDDEN, not_found=FILTER_NOT_FOUND
    )
    # Documented: a prompt without logs is a 404 too (reference §3, ruling 4).
    if not listing.rows and (paging is None or not listing.total):
        raise NotFound(FILTER_NOT_FOUND)
    return _listing(listing, paging, log_json)


_FILTER_DOCS = {
    400: f"`{PARAMS_INVALID}` / `{FILTER_ID_MALFORMED}`",
    401: f"`Authentication required.` / `Authentication token is invalid or has expired.`; "
    f"with `promptId`: `{FILTER_TOKEN}`",
    403: f"with `promptId`: `{FILTER_FORBIDDEN}`",
    404: f"with `promptId`: `{FILTER_NOT_FOUND}` (unknown prompt, or no logs yet)",
}


@logs_router.get(
    "/logs",
    response_model=list[LogOut] | Paginated[LogOut],
    response_model_exclude_none=True,
    openapi_extra=_messages(
        invalid=PARAMS_INVALID,
        missing_token="Authentication required.",
        invalid_token="Authentication token is invalid or has expired.",
    ),
    responses={k: {"model": MessageOut, "description": v} for k, v in _FILTER_DOCS.items()},
    description=(
        "The logs of all the caller's prompts, oldest first; with `?promptId=` only that "
        "prompt's logs (404 when it has none, as documented)." + _PAGINATION_NOTE
    ),
)
def list_logs(
    request: Request,
    principal: CurrentUser,
    db: Db,
    promptId: Annotated[str | None, Query(description="Only this prompt's logs")] = None,
    page: PageParam = None,
    page_limit: PageLimitParam = None,
) -> Response:
    _only_params(request, {"promptId", "page", "pageLimit"})
    paging = _page(request)
    if "promptId" in request.query_params:
        return _logs_of_prompt(promptId, principal, db, paging)
    return _listing(services.all_logs(db, principal, paging), paging, log_json)


@logs_router.get(
    "/logs-by-prompt",
    response_model=list[LogOut] | Paginated[LogOut],
    response_model_exclude_none=True,
    openapi_extra=_messages(invalid=PARAMS_INVALID, **_FILTER),
    responses={k: {"model": MessageOut, "description": v} for k, v in _FILTER_DOCS.items()},
    description="Compatibility alias of `GET /logs?promptId=` (the original OpenAPI file's path)."
    + _PAGINATION_NOTE,
)
def list_logs_by_prompt(
    request: Request,
    principal: CurrentUser,
    db: Db,
    promptId: Annotated[str | None, Query(description="The prompt")] = None,
    page: PageParam = None,
    page_limit: PageLimitParam = None,
) -> Response:
    _only_params(request, {"promptId", "page", "pageLimit"})
    return _logs_of_prompt(promptId, principal, db, _page(request))


@logs_router.delete(
    "/logs/{id}",
    status_code=204,
    response_class=Response,
    openapi_extra=_messages(),
    responses=_docs(s400=LOG_ID_MALFORMED, s401=_AUTH_DOC, s403=LOG_NOT_YOURS, s404=LOG_NOT_FOUND),
)
def delete_log(id: str, principal: CurrentUser, db: Db) -> Response:
    """Delete one log of one of the caller's prompts."""
    log_id = _parse_id("log", id, LOG_ID_MALFORMED)
    with db.write() as conn:
        owner = queries.log_owner(conn, log_id)
        if owner is None:
            raise NotFound(LOG_NOT_FOUND)
        if owner != principal.user_id:
            raise Forbidden(LOG_NOT_YOURS)
        queries.delete_log(conn, log_id)
    return Response(status_code=204)


@logs_router.patch(
    "/logs/{id}",
    response_model=LogOut,
    openapi_extra=_messages(invalid=FIELDS_INVALID),
    responses=_docs(s400=LOG_ID_MALFORMED, s401=_AUTH_DOC, s403=LOG_NOT_YOURS, s404=LOG_NOT_FOUND),
)
def annotate_log(id: str, body: LogPatch, principal: CurrentUser, db: Db) -> Response:
    """LogHarbor addition: score (0-10, or null to clear) and annotate one log, whether it was
    posted here or made from an app's LLM call; nothing else of a log changes."""
    log_id = _parse_id("log", id, LOG_ID_MALFORMED)
    with db.write() as conn:
        owner = queries.log_owner(conn, log_id)
        if owner is None:
            raise NotFound(LOG_NOT_FOUND)
        if owner != principal.user_id:
            raise Forbidden(LOG_NOT_YOURS)
        row = queries.annotate_log(conn, log_id, body.model_dump(exclude_unset=True))
    (annotated,) = services.with_calls(db, queries.Listing([row], None)).rows
    return JSONResponse(log_json(annotated))


# Routes are copied with their own class when included, so this stays after every logs route.
router.include_router(logs_router)
