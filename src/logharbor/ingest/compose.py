"""The Arkyn JSON front-end: compose, ``/ingest-log`` and the batch endpoints.

Each decodes its JSON into ``records.HttpExchange`` (through the compose body's pydantic model,
whose field names the answers use), hands it to the one normalize step and the pipeline, and
answers as the Arkyn family does. The endpoints are plain Starlette endpoints: the ingest lane
(``ingest.lane``) serves them without FastAPI's per-request stack, and ``ingest.routes``
declares them to FastAPI for the OpenAPI docs.

Checks run in the order both APIs document: the token, then the content type, then the body.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from logharbor.auth.deps import Principal, claim_principal
from logharbor.common.errors import (
    BadRequest,
    LogHarborError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from logharbor.common.handlers import validation_error
from logharbor.common.routing import is_json_content_type
from logharbor.common.timestamps import iso
from logharbor.ingest import normalize as ingest_normalize
from logharbor.ingest.pipeline import Outcome, Submission
from logharbor.ingest.records import ExceptionInfo, Frame, HttpExchange, NormalizedExchange
from logharbor.traffic import normalize
from logharbor.traffic.access import check_source_id
from logharbor.traffic.normalize import IngestConfig
from logharbor.traffic.schemas import ComposeIn, ExceptionIn, IngestLogIn

ModelT = TypeVar("ModelT", bound=BaseModel)

MAX_BATCH_RECORDS = 1000
MAX_BATCH_BYTES = 5 * 1024 * 1024

# ComposeIn's payload fields, and whether NUL characters may be stored in them (bodies only).
_PAYLOAD_FIELDS = {
    "requestHeaders": False,
    "requestBody": True,
    "queryParams": False,
    "responseHeaders": False,
    "responseBody": True,
}


def exchange_of(item: ComposeIn) -> HttpExchange:
    """A compose body as the pipeline's record."""
    return HttpExchange(
        domain=item.domainUrl,
        protocol=item.protocol,
        pathname=item.pathnameUrl,
        method=item.method,
        status=item.status,
        elapsed_ms=float(item.elapsedTime),
        request_headers=item.requestHeaders,
        request_body=item.requestBody,
        query=item.queryParams,
        response_headers=item.responseHeaders,
        response_body=item.responseBody,
        route=item.routeTemplate,
        user_id=item.trafficUserId,
        client_id=item.id,
        trace_id=item.traceId,
        span_id=item.spanId,
        exception=_exception_of(item.exception),
    )


def _exception_of(item: ExceptionIn | None) -> ExceptionInfo | None:
    if item is None:
        return None
    return ExceptionInfo(
        type=item.type,
        message=item.message,
        stacktrace=item.stacktrace,
        frames=tuple(Frame(f.file, f.line, f.function) for f in item.frames),
    )


def prepare_record(raw: Any, config: IngestConfig) -> NormalizedExchange:
    """Validate one raw JSON record (a batch item) as compose does; raises BadRequest."""
    try:
        item = ComposeIn.model_validate(raw)
    except ValidationError as exc:
        errors = validation_error(exc.errors()).field_errors
        # The payloads are checked after the schema (normalize_exchange); name their faults too.
        for field, allow_nul in _PAYLOAD_FIELDS.items():
            if isinstance(raw, dict) and field not in errors:
                try:
                    normalize.check_json(raw.get(field), allow_nul=allow_nul)
                except ValueError as fault:
                    errors[field] = str(fault)
        raise BadRequest("Invalid input data", field_errors=errors) from None
    return ingest_normalize.normalize_exchange(exchange_of(item), config)


def parse_json_body(body: bytes, model: type[ModelT]) -> ModelT:
    """The body validated against ``model``, refused with the family's field errors."""
    if not body:
        raise validation_error([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
    try:
        return model.model_validate_json(body)
    except ValidationError:
        pass
    # Refused: decide again with the standard library's parser, so that the verdict names the
    # field. (pydantic's parser refuses lone surrogates as malformed JSON, for one; json.loads
    # lets the model's own check name the field.)
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise validation_error(
            [{"type": "json_invalid", "loc": ("body", exc.pos), "ctx": {"error": exc.msg}}]
        ) from None
    except (ValueError, RecursionError):  # not UTF-8, nested too deep
        raise BadRequest(
            "There was an error parsing the body",
            field_errors={"body": "Must be valid UTF-8 JSON"},
            generic=True,
        ) from None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None


def check_json_content_type(request: Request) -> None:
    # Arkyn collectors may omit the header; a wrong one is refused.
    content_type = request.headers.get("content-type")
    if content_type is not None and not is_json_content_type(content_type):
        raise UnsupportedMediaType()


async def submit(request: Request, submission: Submission) -> Outcome:
    """Store through the group-commit writer; the outcome once committed."""
    state = request.app.state
    outcome: Outcome = await state.writer.run_bulk(state.pipeline, submission)
    return outcome


def ingest_config(request: Request) -> IngestConfig:
    return IngestConfig.from_settings(request.app.state.settings)


# --- compose and /ingest-log --------------------------------------------------------------------


def _wire_default(value: Any) -> str:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


async def _compose(
    request: Request, principal: Principal, source_id: str, item: ComposeIn
) -> Response:
    record = ingest_normalize.normalize_exchange(exchange_of(item), ingest_config(request))
    submission = Submission(principal, check_source_id(source_id), [record])
    outcome = await submit(request, submission)
    if isinstance(outcome, LogHarborError):
        raise outcome
    created = outcome[0]
    if isinstance(created, LogHarborError):
        raise created
    # Bytes built here: the pipeline made the exact RecordDetailOut shape, and validating it
    # again through a response model cost more than storing it.
    payload = orjson.dumps(created, default=_wire_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    return Response(payload, status_code=201, media_type="application/json")


async def compose_record(request: Request) -> Response:
    """Store one HTTP exchange in one call: the domain and pathname are created or reused, and
    the request, response and traffic row are stored in one transaction (all or nothing).

    Accepts every collector format: enums in any case; headers, bodies and query params as JSON
    or as JSON text; null bodies; fractional ``elapsedTime``. Sensitive values are masked.
    """
    principal = await claim_principal(request)
    check_json_content_type(request)
    item = parse_json_body(await request.body(), ComposeIn)
    return await _compose(request, principal, request.path_params["trafficSourceId"], item)


async def ingest_log(request: Request) -> Response:
    """The newer collectors' endpoint: the compose body with ``trafficSourceId`` in it.

    With an ingest key, ``trafficSourceId`` may be left out (the key names its source).
    """
    principal = await claim_principal(request)
    check_json_content_type(request)
    item = parse_json_body(await request.body(), IngestLogIn)
    source_id = item.trafficSourceId or principal.ingest_source_id
    if source_id is None:
        raise BadRequest(field_errors={"trafficSourceId": "Traffic source id is required"})
    return await _compose(request, principal, source_id, item)


# --- batches -----------------------------------------------------------------------------------


async def _read_batch_json(request: Request) -> Any:
    check_json_content_type(request)
    body = await request.body()
    if len(body) > MAX_BATCH_BYTES:
        raise PayloadTooLarge(f"A batch may hold at most {MAX_BATCH_BYTES} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses NaN, Infinity and lone surrogate escapes outright, which cost a whole batch
    # for one such item; the stdlib parser accepts them, so the item's own check names them and
    # the others are stored.
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
    if len(records) > MAX_BATCH_RECORDS:
        raise BadRequest(field_errors={"records": f"At most {MAX_BATCH_RECORDS} records per batch"})
    return records


def _prepare_all(
    records: list[Any], config: IngestConfig
) -> tuple[list[tuple[int, NormalizedExchange]], list[dict[str, Any]]]:
    good: list[tuple[int, NormalizedExchange]] = []
    bad: list[dict[str, Any]] = []
    for index, raw in enumerate(records):
        try:
            good.append((index, prepare_record(raw, config)))
        except LogHarborError as exc:
            bad.append(_item_error(index, exc))
    return good, bad


def _item_error(index: int, exc: LogHarborError) -> dict[str, Any]:
    return {"index": index, "errors": exc.field_errors or {"record": exc.message}}


async def _ingest_batch(
    request: Request, principal: Principal, source_id: Any, records: list[Any]
) -> JSONResponse:
    source_id = check_source_id(source_id) if isinstance(source_id, str) else None
    if source_id is None:
        raise BadRequest(field_errors={"trafficSourceId": "Required"})
    good, bad = await run_in_threadpool(_prepare_all, records, ingest_config(request))
    stored: list[dict[str, Any]] = []
    if good:
        submission = Submission(principal, source_id, [record for _, record in good], detail=False)
        outcome = await submit(request, submission)
        if isinstance(outcome, LogHarborError):
            raise outcome
        for (index, _), answer in zip(good, outcome, strict=True):
            if isinstance(answer, LogHarborError):  # e.g. a client id of another source
                bad.append(_item_error(index, answer))
            else:
                stored.append({"index": index, "id": answer["id"]})
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


async def batch(request: Request) -> Response:
    """Store up to 1,000 traffic records (a JSON array of compose bodies, or
    ``{"records": [...]}``); every valid item is stored, each bad one is named by its index."""
    principal = await claim_principal(request)
    records = _records_of(await _read_batch_json(request))
    return await _ingest_batch(request, principal, request.path_params["trafficSourceId"], records)


async def ingest_batch(request: Request) -> Response:
    """Family-neutral batch ingest: ``{trafficSourceId, records}`` (an ingest key implies the
    source)."""
    principal = await claim_principal(request)
    payload = await _read_batch_json(request)
    if not isinstance(payload, dict):
        raise BadRequest(field_errors={"body": "Must be an object {trafficSourceId, records}"})
    records = _records_of(payload)
    source_id = payload.get("trafficSourceId")
    if source_id is None:
        source_id = principal.ingest_source_id
    return await _ingest_batch(request, principal, source_id, records)
