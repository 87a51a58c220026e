"""Batch ingest: many HTTP traffic records per request, each validated on its own.

``POST /http-traffic-record/:trafficSourceId/batch`` (alias ``/http-traffic-records/...``) takes
a JSON array of compose records (or ``{"records": [...]}``); ``POST /api/v1/ingest`` takes
``{"trafficSourceId": ..., "records": [...]}`` for collectors holding an ingest key. At most
1,000 records and 5 MiB per call. Every item is validated exactly as compose validates it
(``traffic.ingest.prepare_record``); a bad item is reported with its index and field errors and
never keeps the good ones out. All valid items are stored in one job of the group-commit writer,
so the answer comes only after they are committed.

Domains and pathnames are resolved through ``traffic.ingest.NameCache``, as compose does.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from logharbor.auth.deps import CurrentPrincipal, Principal
from logharbor.common.errors import (
    BadRequest,
    LogHarborError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from logharbor.common.routing import ArkynRoute, also_at, is_json_content_type
from logharbor.traffic import ingest as traffic_ingest
from logharbor.traffic.access import check_source_id
from logharbor.traffic.ingest import IngestItem, PreparedRecord, prepare_record
from logharbor.traffic.normalize import IngestConfig

router = APIRouter(route_class=ArkynRoute, tags=["batch ingest"])

MAX_RECORDS = 1000
MAX_BYTES = 5 * 1024 * 1024


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
        pass
    # orjson refuses NaN, Infinity and lone surrogate escapes outright, which cost a whole batch
    # for one such item; the stdlib parser accepts them, so the item's own check names them and
    # the others are stored (as compose's json_body does).
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
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
            bad.append(_item_error(index, exc))
    return good, bad


def _item_error(index: int, exc: LogHarborError) -> dict[str, Any]:
    return {"index": index, "errors": exc.field_errors or {"record": exc.message}}


async def _ingest(
    request: Request, principal: Principal, source_id: Any, records: list[Any]
) -> JSONResponse:
    source_id = check_source_id(source_id) if isinstance(source_id, str) else None
    if source_id is None:
        raise BadRequest(field_errors={"trafficSourceId": "Required"})
    config = IngestConfig.from_settings(request.app.state.settings)
    good, bad = await run_in_threadpool(_prepare_all, records, config)
    stored: list[dict[str, Any]] = []
    if good:
        item = IngestItem(principal, source_id, [record for _, record in good], detail=False)
        outcomes = await traffic_ingest.ingest(request, item)
        for (index, _), outcome in zip(good, outcomes, strict=True):
            if isinstance(outcome, LogHarborError):  # e.g. a client id of another source
                bad.append(_item_error(index, outcome))
            else:
                stored.append({"index": index, "id": outcome["id"]})
        bad.sort(key=lambda error: error["index"])
    body = {
        "received": len(records),
        "stored": len(stored),
        "failed": len(bad),
        "items": stored,
        "errors": bad,
    }
    if not stored:
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


@also_at(router, "/http-traffic-records/{trafficSourceId}/batch")
@router.post(
    "/http-traffic-record/{trafficSourceId}/batch",
    status_code=201,
    summary="Store up to 1,000 traffic records; per-item errors",
    openapi_extra=_BATCH_DOC,
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
