"""HTTP traffic, the joined records (compose and list), ``/ingest-log`` and core logs.

Writes go through the group-commit writer: all of one request's database work runs inside one
job, in one transaction, and the answer comes after COMMIT. A failing job (a foreign id, say)
rolls back its savepoint, so bad input never leaves partial rows.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import Connection, RowMapping

from logharbor.auth.deps import CurrentPrincipal, CurrentUser, Db, Principal
from logharbor.common.errors import NotFound
from logharbor.common.ids import new_id
from logharbor.common.pagination import Page, Paginated
from logharbor.common.routing import ArkynRoute, also_at, path_id
from logharbor.common.timestamps import utcnow
from logharbor.db.tables import (
    core_pathnames,
    domains,
    pathnames,
    requests,
    responses,
)
from logharbor.db.writer import GroupCommitWriter, WriteTx
from logharbor.ingest.events import TrafficEvent
from logharbor.ingest.store import RecordStore
from logharbor.traffic import normalize, queries, services
from logharbor.traffic.access import Access, require_source
from logharbor.traffic.filters import CoreLogFilters, Filters, Sort
from logharbor.traffic.schemas import (
    CoreLogIn,
    CoreLogOut,
    HttpTrafficIn,
    HttpTrafficOut,
    RecordDetailOut,
    RecordOut,
)

router = APIRouter(route_class=ArkynRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {400: {}, 401: {}, 403: {}, 404: {}}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {**_ERRORS, 409: {}, 413: {}, 503: {}}


def _claim(
    conn: Connection,
    store: RecordStore,
    kind: str,
    payload_id: str,
    source_id: str,
    principal: Principal,
) -> RowMapping:
    """A request or response (``kind``) created before, linked now to a row of the source."""
    table, field, what = (
        (requests, "requestId", "Request")
        if kind == "request"
        else (responses, "responseId", "Response")
    )
    return queries.claim_payload(
        conn,
        table,
        payload_id,
        source_id,
        principal,
        field=field,
        what=what,
        linked=store.payload_linked,
    )


def _store(request: Request) -> RecordStore:
    store: RecordStore = request.app.state.pipeline.store_backend
    return store


def _writer(request: Request) -> GroupCommitWriter:
    writer: GroupCommitWriter = request.app.state.writer
    return writer


# --- http traffic ------------------------------------------------------------------------------


@also_at(router, "/http-traffics/{id}")
@router.post(
    "/http-traffic/{id}",
    status_code=201,
    response_model=HttpTrafficOut,
    tags=["http traffic"],
    responses=_WRITE_ERRORS,
)
async def create_http_traffic(
    trafficSourceId: Annotated[str, path_id("The traffic source's id")],
    body: HttpTrafficIn,
    principal: CurrentPrincipal,
    request: Request,
) -> dict[str, Any]:
    """Create a traffic row from a domain, pathname, request and response created before.

    Every id must belong to this traffic source (or, for the request and response, to you and
    not yet be linked); otherwise 404 naming the field.
    """

    store = _store(request)

    def job(tx: WriteTx) -> dict[str, Any]:
        conn = tx.conn
        source = require_source(conn, trafficSourceId, principal, Access.INGEST)
        source_id = source["id"]
        queries.touch_ingest_key(conn, principal)
        domain = queries.row_in_source(
            conn, domains, body.domainId, source_id, field="domainId", what="Domain"
        )
        pathname = queries.row_in_source(
            conn, pathnames, body.pathnameId, source_id, field="pathnameId", what="Pathname"
        )
        if pathname["domain_id"] != domain["id"]:
            raise NotFound(
                "Pathname not found",
                field_errors={"pathnameId": "Pathname not found in this domain"},
            )
        request_row = _claim(conn, store, "request", body.requestId, source_id, principal)
        response_row = _claim(conn, store, "response", body.responseId, source_id, principal)
        row = {
            "id": new_id(),
            "traffic_source_id": source_id,
            "domain_id": domain["id"],
            "pathname_id": pathname["id"],
            "status": body.status,
            "method": body.method,
            "level": normalize.level_for(body.status),
            "elapsed_time": float(body.elapsedTime),
            "traffic_user_id": body.trafficUserId,
            "request_id": body.requestId,
            "response_id": body.responseId,
            "created_at": utcnow(),
        }
        store.insert_linked(
            tx,
            "http_traffic",
            row,
            {
                "domain": domain,
                "pathname": pathname,
                "request": request_row,
                "response": response_row,
            },
        )
        tx.publish(
            [
                TrafficEvent(
                    kind="traffic",
                    id=row["id"],
                    traffic_source_id=source_id,
                    domain_id=domain["id"],
                    domain=domain["value"],
                    pathname_id=pathname["id"],
                    pathname=pathname["value"],
                    method=row["method"],
                    status=row["status"],
                    level=row["level"],
                    elapsed_time=row["elapsed_time"],
                    traffic_user_id=row["traffic_user_id"],
                    created_at=row["created_at"],
                    response_preview=response_row["body_preview"],
                )
            ]
        )
        return queries.traffic_json(row)

    return await _writer(request).run(job)


@also_at(router, "/http-traffics/{id}")
@router.get(
    "/http-traffic/{id}",
    response_model=Paginated[HttpTrafficOut],
    tags=["http traffic"],
    responses=_ERRORS,
)
def list_http_traffic(
    trafficSourceId: Annotated[str, path_id("The traffic source's id")],
    principal: CurrentUser,
    db: Db,
    page: Page,
    sort: Sort,
    filters: Filters,
) -> dict[str, Any]:
    """The source's traffic rows, filtered (method, status, level, domain, pathname, dates,
    trafficUserId, q) and sorted by createdAt (default), status, elapsedTime, method or level."""
    return services.list_rows(
        db, principal, trafficSourceId, page, sort, filters, "http_traffic", queries.traffic_json
    )


@also_at(router, "/http-traffics/{id}")
@router.delete(
    "/http-traffic/{id}",
    status_code=204,
    response_class=Response,
    tags=["http traffic"],
    responses=_ERRORS,
)
def delete_http_traffic(
    httpTrafficId: Annotated[str, path_id("The http traffic record's id")],
    principal: CurrentUser,
    db: Db,
) -> Response:
    """Delete a traffic row with its request and response."""
    traffic_id = services.checked_id(httpTrafficId, "httpTrafficId")
    missing = NotFound(
        "Http traffic not found", field_errors={"httpTrafficId": "Http traffic not found"}
    )
    services.delete_traffic_row(db, principal, traffic_id, missing)
    return Response(status_code=204)


# --- records: compose, ingest-log, list, detail -------------------------------------------------


@also_at(router, "/http-traffic-records/{trafficSourceId}")
@router.get(
    "/http-traffic-record/{trafficSourceId}",
    response_model=Paginated[RecordOut],
    tags=["http traffic records"],
    responses=_ERRORS,
)
def list_records(
    trafficSourceId: str, principal: CurrentUser, db: Db, page: Page, sort: Sort, filters: Filters
) -> dict[str, Any]:
    """Records joined with domain, pathname, request and response (bodies as previews; the
    full bodies are at the record's own URL). Same filters and sorts as ``/http-traffic``."""
    return services.list_records(db, principal, trafficSourceId, page, sort, filters)


@also_at(router, "/http-traffic-records/{trafficSourceId}/{recordId}")
@router.get(
    "/http-traffic-record/{trafficSourceId}/{recordId}",
    response_model=RecordDetailOut,
    tags=["http traffic records"],
    responses=_ERRORS,
)
def get_record(
    trafficSourceId: str, recordId: str, principal: CurrentUser, db: Db
) -> dict[str, Any]:
    """One record with its full request and response (headers, query params, bodies)."""
    return services.get_record(db, principal, trafficSourceId, recordId)


# --- core logs -----------------------------------------------------------------------------------


@also_at(router, "/core-logs/{trafficSourceId}")
@router.post(
    "/core-log/{trafficSourceId}",
    status_code=201,
    response_model=CoreLogOut,
    tags=["core logs"],
    responses=_WRITE_ERRORS,
)
async def create_core_log(
    trafficSourceId: str, body: CoreLogIn, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    """Log a call of a route template (a core pathname of this source), optionally with a
    request and response created before."""

    store = _store(request)

    def job(tx: WriteTx) -> dict[str, Any]:
        conn = tx.conn
        source = require_source(conn, trafficSourceId, principal, Access.INGEST)
        source_id = source["id"]
        queries.touch_ingest_key(conn, principal)
        core_pathname = queries.row_in_source(
            conn,
            core_pathnames,
            body.corePathnameId,
            source_id,
            field="corePathnameId",
            what="Core pathname",
        )
        preview = None
        request_row = response_row = None
        if body.requestId is not None:
            request_row = _claim(conn, store, "request", body.requestId, source_id, principal)
        if body.responseId is not None:
            response_row = _claim(conn, store, "response", body.responseId, source_id, principal)
            preview = response_row["body_preview"]
        row = {
            "id": new_id(),
            "traffic_source_id": source_id,
            "core_pathname_id": core_pathname["id"],
            "status": body.status,
            "method": body.method,
            "level": normalize.level_for(body.status),
            "elapsed_time": float(body.elapsedTime),
            "traffic_user_id": body.trafficUserId,
            "request_id": body.requestId,
            "response_id": body.responseId,
            "created_at": utcnow(),
        }
        store.insert_linked(
            tx,
            "core_logs",
            row,
            {"core_pathname": core_pathname, "request": request_row, "response": response_row},
        )
        event = TrafficEvent(
            kind="core",
            id=row["id"],
            traffic_source_id=source_id,
            domain_id=None,
            domain=None,
            pathname_id=core_pathname["id"],
            pathname=core_pathname["value"],
            method=row["method"],
            status=row["status"],
            level=row["level"],
            elapsed_time=row["elapsed_time"],
            traffic_user_id=row["traffic_user_id"],
            created_at=row["created_at"],
            response_preview=preview,
        )
        tx.publish([event])
        return queries.core_log_json(row)

    return await _writer(request).run(job)


@also_at(router, "/core-logs/{trafficSourceId}")
@router.get(
    "/core-log/{trafficSourceId}",
    response_model=Paginated[CoreLogOut],
    tags=["core logs"],
    responses=_ERRORS,
)
def list_core_logs(
    trafficSourceId: str,
    principal: CurrentUser,
    db: Db,
    page: Page,
    sort: Sort,
    filters: CoreLogFilters,
) -> dict[str, Any]:
    """The source's core logs, with the same filters and sorts as traffic (``corePathnameId``
    and ``pathname`` refer to core pathnames)."""
    return services.list_rows(
        db, principal, trafficSourceId, page, sort, filters, "core_logs", queries.core_log_json
    )
