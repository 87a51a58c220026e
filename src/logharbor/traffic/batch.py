"""Batch ingest: many HTTP traffic records per request, each validated on its own.

``POST /http-traffic-record/:trafficSourceId/batch`` (alias ``/http-traffic-records/...``) takes
a JSON array of compose records (or ``{"records": [...]}``); ``POST /api/v1/ingest`` takes
``{"trafficSourceId": ..., "records": [...]}`` for collectors holding an ingest key. At most
1,000 records and 5 MiB per call. Every item is validated exactly as compose validates it
(``traffic.ingest.prepare_record``); a bad item is reported with its index and field errors and
never keeps the good ones out. All valid items are stored in one job of the group-commit writer,
so the answer comes only after they are committed.

Domains and pathnames are resolved through ``NameCache`` (ids kept per process), so a warm batch
does no get-or-create queries at all. The cache is only a hint: a stale id (a domain deleted in
the meantime, or created by a transaction that rolled back) is caught by the foreign keys of the
traffic rows, and the job then forgets that source's names and retries with fresh lookups.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from logharbor.auth.deps import CurrentPrincipal, Principal
from logharbor.common.errors import (
    BadRequest,
    LogHarborError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from logharbor.common.ids import new_id
from logharbor.common.routing import ArkynRoute, is_json_content_type
from logharbor.common.timestamps import utcnow
from logharbor.db.tables import http_traffic, requests, responses
from logharbor.traffic import events, queries
from logharbor.traffic.access import Access, check_source_id, require_source
from logharbor.traffic.ingest import PreparedRecord, insert_many, payload_row, prepare_record
from logharbor.traffic.normalize import IngestConfig

router = APIRouter(route_class=ArkynRoute, tags=["batch ingest"])

MAX_RECORDS = 1000
MAX_BYTES = 5 * 1024 * 1024


class NameCache:
    """Domain and pathname ids per traffic source, so the hot path does not query for them."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        # (source_id, origin) -> (domain_id, value, protocol)
        self._domains: dict[tuple[str, str], tuple[str, str, str]] = {}
        # (source_id, domain_id, pathname) -> (pathname_id, value)
        self._pathnames: dict[tuple[str, str, str], tuple[str, str]] = {}
        self.hits = 0
        self.misses = 0

    def domain(
        self, conn: Connection, source_id: str, origin: str, protocol: str
    ) -> tuple[str, str, str]:
        key = (source_id, origin)
        found = self._domains.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        row = queries.get_or_create_domain(conn, source_id, origin, protocol)
        value = (row["id"], row["value"], row["protocol"])
        self._put(self._domains, key, value)
        return value

    def pathname(
        self, conn: Connection, source_id: str, domain_id: str, path: str
    ) -> tuple[str, str]:
        key = (source_id, domain_id, path)
        found = self._pathnames.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        row = queries.get_or_create_pathname(conn, source_id, domain_id, path)
        value = (row["id"], row["value"])
        self._put(self._pathnames, key, value)
        return value

    def _put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        with self._lock:
            if len(table) >= self.max_entries:
                table.clear()  # crude but bounded; the next requests refill what is hot
            table[key] = value

    def forget(self, source_id: str) -> None:
        with self._lock:
            for table in (self._domains, self._pathnames):
                for key in [k for k in table if k[0] == source_id]:
                    del table[key]


def name_cache(request: Request) -> NameCache:
    cache = getattr(request.app.state, "name_cache", None)
    if cache is None:
        cache = request.app.state.name_cache = NameCache()
    return cache


def store_prepared(
    conn: Connection, source_id: str, records: Sequence[PreparedRecord], cache: NameCache
) -> list[str]:
    """Insert ``records`` (requests, responses, traffic) and publish their events; their ids."""
    now = utcnow()
    request_rows: list[dict[str, Any]] = []
    response_rows: list[dict[str, Any]] = []
    traffic_rows: list[dict[str, Any]] = []
    published: list[events.TrafficEvent] = []
    for record in records:
        domain_id, domain, _protocol = cache.domain(conn, source_id, record.origin, record.protocol)
        pathname_id, pathname = cache.pathname(conn, source_id, domain_id, record.pathname)
        request_row = payload_row(
            record.request,
            source_id=source_id,
            owner_user_id=None,
            created_at=now,
            with_query_params=True,
        )
        response_row = payload_row(
            record.response,
            source_id=source_id,
            owner_user_id=None,
            created_at=now,
            with_query_params=False,
        )
        row = {
            "id": new_id(),
            "traffic_source_id": source_id,
            "domain_id": domain_id,
            "pathname_id": pathname_id,
            "status": record.status,
            "method": record.method,
            "level": record.level,
            "elapsed_time": record.elapsed_time,
            "traffic_user_id": record.traffic_user_id,
            "request_id": request_row["id"],
            "response_id": response_row["id"],
            "created_at": now,
        }
        request_rows.append(request_row)
        response_rows.append(response_row)
        traffic_rows.append(row)
        published.append(
            events.TrafficEvent(
                kind="traffic",
                id=row["id"],
                traffic_source_id=source_id,
                domain_id=domain_id,
                domain=domain,
                pathname_id=pathname_id,
                pathname=pathname,
                method=record.method,
                status=record.status,
                level=record.level,
                elapsed_time=record.elapsed_time,
                traffic_user_id=record.traffic_user_id,
                created_at=now,
                response_preview=record.response.body.preview,
            )
        )
    insert_many(conn, requests, request_rows)
    insert_many(conn, responses, response_rows)
    insert_many(conn, http_traffic, traffic_rows)
    events.publish(conn, published)
    return [row["id"] for row in traffic_rows]


def store_job(source_id: str, records: Sequence[PreparedRecord], cache: NameCache) -> Any:
    """A writer job storing ``records``, retrying once with fresh names if a cached id is stale."""

    def job(conn: Connection) -> list[str]:
        try:
            with conn.begin_nested():
                return store_prepared(conn, source_id, records, cache)
        except IntegrityError:
            cache.forget(source_id)
        with conn.begin_nested():
            return store_prepared(conn, source_id, records, cache)

    return job


async def _read_json(request: Request) -> Any:
    content_type = request.headers.get("content-type")
    if content_type is not None and not is_json_content_type(content_type):
        raise UnsupportedMediaType()
    body = await request.body()
    if len(body) > MAX_BYTES:
        raise PayloadTooLarge(f"A batch may hold at most {MAX_BYTES} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("Body is not valid JSON", field_errors={"body": "Invalid JSON"}) from None


def _records_of(payload: Any) -> list[Any]:
    records = payload.get("records") if isinstance(payload, dict) else payload
    if not isinstance(records, list):
        raise BadRequest(field_errors={"records": "Must be an array of traffic records"})
    if not records:
        raise BadRequest(field_errors={"records": "Must hold at least one record"})
    if len(records) > MAX_RECORDS:
        raise BadRequest(field_errors={"records": f"At most {MAX_RECORDS} records per batch"})
    return records


def _prepare_all(records: list[Any], config: IngestConfig) -> tuple[list[Any], list[Any]]:
    good: list[tuple[int, PreparedRecord]] = []
    bad: list[dict[str, Any]] = []
    for index, raw in enumerate(records):
        try:
            good.append((index, prepare_record(raw, config)))
        except LogHarborError as exc:
            bad.append({"index": index, "errors": exc.field_errors or {"record": exc.message}})
    return good, bad


def _check_access(request: Request, principal: Principal, source_id: str) -> str:
    with request.app.state.db.read() as conn:
        source = require_source(conn, source_id, principal, Access.INGEST)
    return str(source["id"])


async def _ingest(
    request: Request, principal: Principal, source_id: Any, records: list[Any]
) -> JSONResponse:
    source_id = check_source_id(source_id) if isinstance(source_id, str) else None
    if source_id is None:
        raise BadRequest(field_errors={"trafficSourceId": "Required"})
    source_id = await run_in_threadpool(_check_access, request, principal, source_id)
    config = IngestConfig.from_settings(request.app.state.settings)
    good, bad = await run_in_threadpool(_prepare_all, records, config)
    ids: list[str] = []
    if good:
        job = store_job(source_id, [record for _, record in good], name_cache(request))
        ids = await request.app.state.writer.run(job)
    body = {
        "received": len(records),
        "stored": len(ids),
        "failed": len(bad),
        "items": [{"index": index, "id": id_} for (index, _), id_ in zip(good, ids, strict=True)],
        "errors": bad,
    }
    if not ids:
        error = BadRequest("No valid record in the batch")
        flat = {
            f"records.{item['index']}.{field}": message
            for item in bad
            for field, message in item["errors"].items()
        }
        return JSONResponse(
            {"name": error.name, "message": error.message, "fieldErrors": flat, **body},
            status_code=400,
        )
    return JSONResponse(body, status_code=201)


_BATCH_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "array", "items": {"$ref": "#/components/schemas/ComposeIn"}},
                        {
                            "type": "object",
                            "properties": {"records": {"type": "array", "maxItems": MAX_RECORDS}},
                        },
                    ]
                }
            }
        },
    }
}


@router.post(
    "/http-traffic-record/{trafficSourceId}/batch",
    status_code=201,
    summary="Store up to 1,000 traffic records; per-item errors",
    openapi_extra=_BATCH_DOC,
)
@router.post(
    "/http-traffic-records/{trafficSourceId}/batch", status_code=201, include_in_schema=False
)
async def batch(
    trafficSourceId: str, request: Request, principal: CurrentPrincipal
) -> JSONResponse:
    records = _records_of(await _read_json(request))
    return await _ingest(request, principal, trafficSourceId, records)


@router.post(
    "/api/v1/ingest",
    status_code=201,
    summary="Family-neutral batch ingest: {trafficSourceId, records}",
)
async def ingest(request: Request, principal: CurrentPrincipal) -> JSONResponse:
    payload = await _read_json(request)
    if not isinstance(payload, dict):
        raise BadRequest(field_errors={"body": "Must be an object {trafficSourceId, records}"})
    records = _records_of(payload)
    source_id = payload.get("trafficSourceId")
    if source_id is None:
        source_id = principal.ingest_source_id
    return await _ingest(request, principal, source_id, records)
