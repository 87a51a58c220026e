"""Domains, pathnames, core pathnames, and standalone requests and responses.

Domains, pathnames and core pathnames are get-or-create *within one traffic source* (unique
constraints decide, so concurrent calls never duplicate). A standalone request or response
belongs to whoever created it until an ``http-traffic`` or ``core-log`` row links it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Response
from sqlalchemy import Table, delete

from logharbor.auth.deps import AppSettings, CurrentPrincipal, CurrentUser, Db
from logharbor.common.errors import BadRequest, NotFound
from logharbor.common.ids import new_id
from logharbor.common.pagination import Page, Paginated
from logharbor.common.routing import ArkynRoute, also_at, path_id
from logharbor.common.timestamps import utcnow
from logharbor.db.tables import (
    core_logs,
    core_pathnames,
    domains,
    http_traffic,
    pathnames,
    requests,
    responses,
)
from logharbor.ingest.normalize import prepare_payload
from logharbor.traffic import (
    clickhouse_queries,
    normalize,
    queries,
    services,
)
from logharbor.traffic.access import Access, can_read, require_source, require_source_of
from logharbor.traffic.filters import NameFilter, Sort
from logharbor.traffic.normalize import IngestConfig
from logharbor.traffic.schemas import (
    CorePathnameIn,
    CorePathnameOut,
    DomainIn,
    DomainOut,
    PathnameIn,
    PathnameOut,
    RequestIn,
    RequestOut,
    ResponseIn,
    ResponseOut,
)

router = APIRouter(route_class=ArkynRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {400: {}, 401: {}, 403: {}, 404: {}}


# --- domains ---------------------------------------------------------------------------------


@also_at(router, "/domains/{id}")
@router.post(
    "/domain/{id}",
    status_code=201,
    response_model=DomainOut,
    tags=["domains"],
    responses=_ERRORS,
)
def create_domain(
    trafficSourceId: Annotated[str, path_id("The traffic source's id")],
    body: DomainIn,
    principal: CurrentUser,
    db: Db,
) -> dict[str, Any]:
    """Get or create a domain (an origin such as ``https://api.example.com``) of the source."""
    try:
        origin, protocol = normalize.normalize_domain(body.value, body.protocol)
    except ValueError as exc:
        raise BadRequest(field_errors={"value": str(exc)}) from None
    with db.write() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.INGEST)
        row = queries.get_or_create_domain(conn, source["id"], origin, protocol)
    return queries.domain_json(row)


@also_at(router, "/domains/{id}")
@router.get(
    "/domain/{id}",
    response_model=Paginated[DomainOut],
    tags=["domains"],
    responses=_ERRORS,
)
def list_domains(
    trafficSourceId: Annotated[str, path_id("The traffic source's id")],
    principal: CurrentUser,
    db: Db,
    page: Page,
    sort: Sort,
    q: NameFilter,
) -> dict[str, Any]:
    """The source's domains; sort by createdAt (default) or value; ``q`` searches the value."""
    return services.list_domains(db, principal, trafficSourceId, page, sort, q)


def _delete_child(
    conn: Any, table: Table, row_id: str, principal: Any, *, field: str, what: str
) -> Any:
    row = queries.row_by_id(conn, table, row_id)
    missing = NotFound(f"{what} not found", field_errors={field: f"{what} not found"})
    if row is None:
        raise missing
    require_source_of(conn, row["traffic_source_id"], principal, Access.MANAGE, missing)
    return row


@also_at(router, "/domains/{id}")
@router.delete(
    "/domain/{id}",
    status_code=204,
    response_class=Response,
    tags=["domains"],
    responses=_ERRORS,
)
def delete_domain(
    domainId: Annotated[str, path_id("The domain's id")], principal: CurrentUser, db: Db
) -> Response:
    """Delete a domain with its pathnames and their traffic records."""
    domain_id = services.checked_id(domainId, "domainId")
    with db.write() as conn:
        _delete_child(conn, domains, domain_id, principal, field="domainId", what="Domain")
        queries.delete_payloads_of(conn, http_traffic, http_traffic.c.domain_id == domain_id)
        services.delete_named_events(conn, db, "http_traffic", "domain_id", domain_id)
        conn.execute(delete(domains).where(domains.c.id == domain_id))
    return Response(status_code=204)


# --- pathnames -------------------------------------------------------------------------------


@also_at(router, "/pathnames/{trafficSourceId}/{domainId}")
@router.post(
    "/pathname/{trafficSourceId}/{domainId}",
    status_code=201,
    response_model=PathnameOut,
    tags=["pathnames"],
    responses=_ERRORS,
)
def create_pathname(
    trafficSourceId: str, domainId: str, body: PathnameIn, principal: CurrentUser, db: Db
) -> dict[str, Any]:
    """Get or create a pathname (``/v1/users``) under one of the source's domains."""
    domain_id = services.checked_id(domainId, "domainId")
    try:
        value = normalize.normalize_pathname(body.value)
    except ValueError as exc:
        raise BadRequest(field_errors={"value": str(exc)}) from None
    with db.write() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.INGEST)
        queries.row_in_source(
            conn, domains, domain_id, source["id"], field="domainId", what="Domain"
        )
        row = queries.get_or_create_pathname(conn, source["id"], domain_id, value)
    return queries.pathname_json(row)


@also_at(router, "/pathnames/{trafficSourceId}/{domainId}")
@router.get(
    "/pathname/{trafficSourceId}/{domainId}",
    response_model=Paginated[PathnameOut],
    tags=["pathnames"],
    responses=_ERRORS,
)
def list_pathnames(
    trafficSourceId: str,
    domainId: str,
    principal: CurrentUser,
    db: Db,
    page: Page,
    sort: Sort,
    q: NameFilter,
) -> dict[str, Any]:
    """A domain's pathnames; sort by createdAt (default) or value; ``q`` searches the value."""
    domain_id = services.checked_id(domainId, "domainId")
    with db.read() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.READ)
        queries.row_in_source(
            conn, domains, domain_id, source["id"], field="domainId", what="Domain"
        )
        where = [pathnames.c.traffic_source_id == source["id"], pathnames.c.domain_id == domain_id]
        return services.value_listing(conn, pathnames, where, page, sort, q, queries.pathname_json)


@also_at(router, "/pathnames/{pathnameId}")
@router.delete(
    "/pathname/{pathnameId}",
    status_code=204,
    response_class=Response,
    tags=["pathnames"],
    responses=_ERRORS,
)
def delete_pathname(pathnameId: str, principal: CurrentUser, db: Db) -> Response:
    """Delete a pathname with its traffic records."""
    pathname_id = services.checked_id(pathnameId, "pathnameId")
    with db.write() as conn:
        _delete_child(conn, pathnames, pathname_id, principal, field="pathnameId", what="Pathname")
        queries.delete_payloads_of(conn, http_traffic, http_traffic.c.pathname_id == pathname_id)
        services.delete_named_events(conn, db, "http_traffic", "pathname_id", pathname_id)
        conn.execute(delete(pathnames).where(pathnames.c.id == pathname_id))
    return Response(status_code=204)


# --- core pathnames ----------------------------------------------------------------------------


@also_at(router, "/core-pathnames/{id}")
@router.post(
    "/core-pathname/{id}",
    status_code=201,
    response_model=CorePathnameOut,
    tags=["core logs"],
    responses=_ERRORS,
)
def create_core_pathname(
    trafficSourceId: Annotated[str, path_id("The traffic source's id")],
    body: CorePathnameIn,
    principal: CurrentPrincipal,
    db: Db,
) -> dict[str, Any]:
    """Get or create a core pathname: a route template such as ``/users/:id``."""
    try:
        value = normalize.normalize_pathname(body.value)
    except ValueError as exc:
        raise BadRequest(field_errors={"value": str(exc)}) from None
    with db.write() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.INGEST)
        queries.touch_ingest_key(conn, principal)
        row = queries.get_or_create_core_pathname(conn, source["id"], value)
    return queries.core_pathname_json(row)


@also_at(router, "/core-pathnames/{id}")
@router.get(
    "/core-pathname/{id}",
    response_model=Paginated[CorePathnameOut],
    tags=["core logs"],
    responses=_ERRORS,
)
def list_core_pathnames(
    trafficSourceId: Annotated[str, path_id("The traffic source's id")],
    principal: CurrentUser,
    db: Db,
    page: Page,
    sort: Sort,
    q: NameFilter,
) -> dict[str, Any]:
    """The source's core pathnames; sort by createdAt (default) or value."""
    with db.read() as conn:
        source = require_source(conn, trafficSourceId, principal, Access.READ)
        where = [core_pathnames.c.traffic_source_id == source["id"]]
        return services.value_listing(
            conn, core_pathnames, where, page, sort, q, queries.core_pathname_json
        )


@also_at(router, "/core-pathnames/{id}")
@router.delete(
    "/core-pathname/{id}",
    status_code=204,
    response_class=Response,
    tags=["core logs"],
    responses=_ERRORS,
)
def delete_core_pathname(
    corePathnameId: Annotated[str, path_id("The core pathname's id")],
    principal: CurrentUser,
    db: Db,
) -> Response:
    """Delete a core pathname with its core logs."""
    core_id = services.checked_id(corePathnameId, "corePathnameId")
    with db.write() as conn:
        _delete_child(
            conn, core_pathnames, core_id, principal, field="corePathnameId", what="Core pathname"
        )
        queries.delete_payloads_of(conn, core_logs, core_logs.c.core_pathname_id == core_id)
        services.delete_named_events(conn, db, "core_logs", "core_pathname_id", core_id)
        conn.execute(delete(core_pathnames).where(core_pathnames.c.id == core_id))
    return Response(status_code=204)


# --- standalone requests and responses ------------------------------------------------------


def _create_payload(
    table: Table,
    headers: Any,
    body: Any,
    query_params: Any,
    principal: Any,
    db: Any,
    settings: Any,
) -> dict[str, Any]:
    with_query = table is requests
    payload = prepare_payload(
        headers, body, IngestConfig.from_settings(settings), query_params=query_params
    )
    # An ingest key's rows belong to its source; a user's rows to the user until linked.
    row: dict[str, Any] = {
        "id": new_id(),
        "traffic_source_id": principal.ingest_source_id,
        "owner_user_id": None if principal.is_ingest_key else principal.user_id,
        "headers": payload.headers,
        "body": payload.body.text,
        "body_preview": payload.body.preview,
        "body_size": payload.body.size,
        "body_truncated": payload.body.truncated,
        "created_at": utcnow(),
    }
    if with_query:
        row["query_params"] = payload.query_params
    with db.write() as conn:
        queries.touch_ingest_key(conn, principal)
        queries.insert_row(conn, table, row)
    return queries.payload_json(row, full=True, query_params=with_query)


@also_at(router, "/requests")
@router.post(
    "/request", status_code=201, response_model=RequestOut, tags=["requests"], responses=_ERRORS
)
def create_request(
    body: RequestIn, principal: CurrentPrincipal, db: Db, settings: AppSettings
) -> dict[str, Any]:
    """Store the headers, body and query params of a request, to link from ``http-traffic``.

    Sensitive headers and body fields are masked; the body is kept in full up to the cap.
    """
    return _create_payload(
        requests, body.headers, body.body, body.queryParams, principal, db, settings
    )


@also_at(router, "/responses")
@router.post(
    "/response", status_code=201, response_model=ResponseOut, tags=["responses"], responses=_ERRORS
)
def create_response(
    body: ResponseIn, principal: CurrentPrincipal, db: Db, settings: AppSettings
) -> dict[str, Any]:
    """Store the headers and body of a response, to link from ``http-traffic``."""
    return _create_payload(responses, body.headers, body.body, None, principal, db, settings)


def _read_payload(table: Table, payload_id: str, principal: Any, db: Any, what: str) -> Any:
    field = "requestId" if table is requests else "responseId"
    payload_id = services.checked_id(payload_id, field)
    with db.read() as conn:
        row: Mapping[Any, Any] | None = queries.readable_payload(conn, table, payload_id, principal)
        if row is None and db.events is not None:
            # A record's own payload lives in its ClickHouse row.
            column = "request_id" if table is requests else "response_id"
            found = clickhouse_queries.payload_of_record(db.events, column, payload_id)
            if found is not None and can_read(conn, found["traffic_source_id"], principal):
                row = found
    if row is None:
        raise NotFound(f"{what} not found", field_errors={field: f"{what} not found"})
    return row


@also_at(router, "/requests/{requestId}")
@router.get("/request/{requestId}", response_model=RequestOut, tags=["requests"], responses=_ERRORS)
def get_request(requestId: str, principal: CurrentUser, db: Db) -> dict[str, Any]:
    """A request with its full body."""
    row = _read_payload(requests, requestId, principal, db, "Request")
    return queries.payload_json(row, full=True, query_params=True)


@also_at(router, "/responses/{responseId}")
@router.get(
    "/response/{responseId}", response_model=ResponseOut, tags=["responses"], responses=_ERRORS
)
def get_response(responseId: str, principal: CurrentUser, db: Db) -> dict[str, Any]:
    """A response with its full body."""
    row = _read_payload(responses, responseId, principal, db, "Response")
    return queries.payload_json(row, full=True, query_params=False)
