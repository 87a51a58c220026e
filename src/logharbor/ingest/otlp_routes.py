"""OTLP/HTTP in: ``POST /v1/traces`` and ``POST /v1/logs``.

Any OpenTelemetry SDK or Collector can export here. Protobuf or JSON, gzip or not
(``ingest.otlp`` decodes). Who sends: an ingest key (``Authorization: Bearer lhk_...``, which
exporters set through ``OTEL_EXPORTER_OTLP_HEADERS``), or a user token plus the
``X-Traffic-Source-Id`` header naming the traffic source.

Answers follow the OTLP/HTTP spec, in the request's encoding:

- 200 with ``partial_success`` when some items were refused (their count, and why), or to say
  how many spans were accepted without being stored;
- 400 for a payload that cannot be decoded, 413 past the size limits, 415 for another media
  type or coding, 401/403 for the credentials: a ``google.rpc.Status``, nothing stored;
- 503 with ``Retry-After`` when the writer is saturated, so that exporters retry.

SERVER and CLIENT spans that carry HTTP attributes become traffic records; log records become
core logs. Either way through the same normalize step and pipeline as every other front-end,
so masking and all-or-nothing storage are the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from logharbor.auth.deps import Principal, claim_principal
from logharbor.common.errors import (
    BadRequest,
    Forbidden,
    LogHarborError,
    MissingToken,
    ServiceUnavailable,
)
from logharbor.ingest import otlp
from logharbor.ingest.compose import ingest_config, submit
from logharbor.ingest.lane import RETRY_AFTER_SECONDS
from logharbor.ingest.normalize import (
    normalize_exchange,
    normalize_generation,
    normalize_log,
    normalize_span,
)
from logharbor.ingest.pipeline import Submission
from logharbor.traffic.access import check_source_id
from logharbor.traffic.normalize import IngestConfig

log = logging.getLogger("logharbor.ingest")

SOURCE_HEADER = "x-traffic-source-id"
# Decompressed bodies: well past what an SDK batch (512 spans) or a Collector batch (8,192)
# weighs, and a bound on what a gzip bomb may cost.
MAX_DECODED_BYTES = 64 * 1024 * 1024
# Reasons quoted in one answer; the count covers them all.
MAX_REASONS = 5


async def _sender(request: Request) -> tuple[Principal, str]:
    """The principal and the traffic source it writes to; confirmed in the write transaction."""
    principal = await claim_principal(request)
    named = request.headers.get(SOURCE_HEADER)
    if principal.is_ingest_key:
        assert principal.ingest_source_id is not None
        if named is not None and check_source_id(named, SOURCE_HEADER) != (
            principal.ingest_source_id
        ):
            raise Forbidden("This ingest key writes to another traffic source")
        return principal, principal.ingest_source_id
    if named is None:
        raise BadRequest(
            "A user token needs the X-Traffic-Source-Id header naming the traffic source",
            field_errors={SOURCE_HEADER: "Required with a user token"},
        )
    return principal, check_source_id(named, SOURCE_HEADER)


def _status_of(error: LogHarborError) -> int:
    # OTLP exporters read 401 as "fix your credentials"; Arkyn's 400 for a missing token is
    # that family's own rule.
    return 401 if isinstance(error, MissingToken) else error.status_code


def _summary(rejected: Sequence[str]) -> str:
    if not rejected:
        return ""
    shown = "; ".join(rejected[:MAX_REASONS])
    more = len(rejected) - MAX_REASONS
    return f"{len(rejected)} refused: {shown}" + (f" (and {more} more)" if more > 0 else "")


async def _export(request: Request, signal: Literal["traces", "logs"]) -> Response:
    encoding: otlp.Encoding = "json"
    try:
        try:
            encoding = otlp.encoding_for(request.headers.get("content-type"))
        except otlp.OtlpUnsupported:
            await _sender(request)  # credentials first, as on every route
            raise
        principal, source_id = await _sender(request)
        export = _Export(
            await request.body(),
            request.headers.get("content-encoding"),
            encoding,
            ingest_config(request),
            principal,
            source_id,
        )
        # Inflating, decoding and normalizing 512 spans is milliseconds of CPU: off the loop.
        prepare = _prepare_traces if signal == "traces" else _prepare_logs
        submission, rejected = await run_in_threadpool(prepare, export)
        if submission.has_records:
            outcome = await submit(request, submission)
            if isinstance(outcome, LogHarborError):
                raise outcome
            for answer in outcome:
                if isinstance(answer, LogHarborError):
                    rejected.append(answer.message)
        answer_body = otlp.encode_export_response(
            signal, encoding, len(rejected), _summary(rejected)
        )
        return Response(answer_body, 200, media_type=otlp.content_type_for(encoding))
    except otlp.OtlpError as error:
        status, message = error.status_code, error.message
    except LogHarborError as error:
        status, message = _status_of(error), _message(error)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        status, message = 500, "Server error"
    response = Response(
        otlp.encode_status(status, message, encoding),
        status,
        media_type=otlp.content_type_for(encoding),
    )
    if status == ServiceUnavailable.status_code:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if status == otlp.OtlpUnsupported.status_code:
        response.headers["Accept-Encoding"] = otlp.ACCEPTED_CONTENT_ENCODINGS
    return response


@dataclass(frozen=True, slots=True)
class _Export:
    body: bytes
    content_encoding: str | None
    encoding: otlp.Encoding
    config: IngestConfig
    principal: Principal
    source_id: str

    def decoded_body(self) -> bytes:
        return otlp.read_body(self.body, self.content_encoding, MAX_DECODED_BYTES)


T = TypeVar("T")


def _by_span(item: Any) -> str:
    return f"span {item.span_id}"


def _normalized(
    items: list[Any],
    normalize: Callable[[Any, IngestConfig], T],
    export: _Export,
    rejected: list[str],
    named: Callable[[Any], str] = _by_span,
) -> list[T]:
    """Each item through its normalize step; a refused one leaves its reason in ``rejected``."""
    kept: list[T] = []
    for item in items:
        try:
            kept.append(normalize(item, export.config))
        except BadRequest as exc:
            rejected.append(_reason(named(item), exc))
    return kept


def _prepare_traces(export: _Export) -> tuple[Submission, list[str]]:
    """The submission of a trace export, and the reasons of what it refused."""
    traces = otlp.decode_traces(export.decoded_body(), export.encoding)
    rejected = list(traces.rejected)
    submission = Submission(
        export.principal,
        export.source_id,
        exchanges=_normalized(traces.exchanges, normalize_exchange, export, rejected),
        generations=_normalized(traces.generations, normalize_generation, export, rejected),
        spans=_normalized(traces.spans, normalize_span, export, rejected),
        detail=False,
    )
    return submission, rejected


def _prepare_logs(export: _Export) -> tuple[Submission, list[str]]:
    decoded = otlp.decode_logs(export.decoded_body(), export.encoding)
    rejected = list(decoded.rejected)
    lines = _normalized(
        decoded.lines, normalize_log, export, rejected, lambda _line: "a log record"
    )
    # Masked and capped as the call itself is; a span's content and its event's meet in store.
    details = _normalized(decoded.details, normalize_generation, export, rejected)
    submission = Submission(
        export.principal, export.source_id, logs=lines, details=details, detail=False
    )
    return submission, rejected


def _message(error: LogHarborError) -> str:
    details = "; ".join(f"{field}: {why}" for field, why in error.field_errors.items())
    return f"{error.message} ({details})" if details else error.message


def _reason(what: str, error: BadRequest) -> str:
    return f"{what}: {_message(error)}"


async def export_traces(request: Request) -> Response:
    """OTLP/HTTP trace export (protobuf or JSON, gzip or not): HTTP SERVER and CLIENT spans
    become traffic records, with their trace ids and exceptions."""
    return await _export(request, "traces")


async def export_logs(request: Request) -> Response:
    """OTLP/HTTP log export: each log record becomes a core log of the source, linked to the
    traffic of its trace."""
    return await _export(request, "logs")
