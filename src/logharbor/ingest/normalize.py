"""The one normalize-and-mask step: what any front-end decoded becomes what the store keeps.

Pure functions, no database. Every wire format goes through here, so masking, caps and
validation are the same for compose, batch and OpenTelemetry. Problems raise ``BadRequest``
naming every bad field (in the compose body's field names, which the batch and compose answers
document).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from logharbor.collector.redaction import mask_text
from logharbor.common.errors import BadRequest
from logharbor.common.ids import from_prefixed, is_uuid
from logharbor.ingest.records import (
    ExceptionInfo,
    Frame,
    Generation,
    HttpExchange,
    LogLine,
    NormalizedExchange,
    Payload,
    Span,
)
from logharbor.traffic import normalize
from logharbor.traffic.normalize import IngestConfig

T = TypeVar("T")

# Exceptions: what one record may carry (the collector caps the same way before sending).
MAX_EXCEPTION_TYPE_CHARS = 300
MAX_EXCEPTION_MESSAGE_CHARS = 2_000
MAX_STACKTRACE_CHARS = 16 * 1024
MAX_FRAMES = 50
MAX_FRAME_TEXT_CHARS = 500
MAX_LOG_MESSAGE_CHARS = 16 * 1024

_METHODS = frozenset(normalize.METHODS)
_TRACE_ID = re.compile(r"^(?!0{32}$)[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^(?!0{16}$)[0-9a-f]{16}$")


def _collect(errors: dict[str, str], field: str, step: Callable[..., T], *args: Any) -> T | None:
    try:
        return step(*args)
    except ValueError as exc:
        errors.setdefault(field, str(exc))
        return None


def _null_text(value: Any) -> Any:
    # Collectors of the JSON-text era send a missing body as the text "null".
    return None if value == "null" else value


def prepare_payload(
    headers: Any,
    body: Any,
    config: IngestConfig,
    *,
    query_params: Any = None,
    fields: tuple[str, str, str] = ("headers", "body", "queryParams"),
) -> Payload:
    """Mask and cap one request/response; raises BadRequest naming ``fields`` entries."""
    errors: dict[str, str] = {}
    prepared_headers = _collect(errors, fields[0], normalize.prepare_document, headers, config)
    prepared_body = _collect(errors, fields[1], normalize.prepare_body, body, config)
    prepared_query = _collect(errors, fields[2], normalize.prepare_document, query_params, config)
    if errors or prepared_body is None:
        raise BadRequest("Invalid input data", field_errors=errors)
    return Payload(prepared_headers, prepared_body, prepared_query)


def trace_id(value: str | None) -> str | None:
    return _hex_id(value, _TRACE_ID, 32)


def span_id(value: str | None) -> str | None:
    return _hex_id(value, _SPAN_ID, 16)


def _hex_id(value: str | None, pattern: re.Pattern[str], digits: int) -> str | None:
    if value is None:
        return None
    text = value.lower()
    if not pattern.match(text):  # the pattern also refuses the all-zero id
        raise ValueError(f"Must be {digits} hex digits, not all zero")
    return text


def _cap(text: str, limit: int, *, keep_tail: bool = False) -> str:
    if len(text) <= limit:
        return text
    return text[-limit:] if keep_tail else text[:limit]


def mask_exception(info: ExceptionInfo, config: IngestConfig) -> ExceptionInfo:
    """Capped and masked; the frames name code (file, line, function), never values."""
    keys = config.masked_keys
    frames = tuple(
        Frame(
            file=_cap(normalize.check_text(frame.file), MAX_FRAME_TEXT_CHARS),
            line=frame.line if frame.line is None or 0 <= frame.line < 2**31 else None,
            function=_cap(normalize.check_text(frame.function), MAX_FRAME_TEXT_CHARS),
        )
        for frame in info.frames[-MAX_FRAMES:]
    )
    stacktrace = info.stacktrace
    if stacktrace is not None:
        stacktrace = mask_text(
            _cap(normalize.check_text(stacktrace), MAX_STACKTRACE_CHARS, keep_tail=True), keys
        )
    return ExceptionInfo(
        type=_cap(normalize.check_text(info.type).strip(), MAX_EXCEPTION_TYPE_CHARS),
        message=mask_text(
            _cap(normalize.check_text(info.message), MAX_EXCEPTION_MESSAGE_CHARS), keys
        ),
        stacktrace=stacktrace,
        frames=frames,
    )


def exception_json(info: ExceptionInfo | None) -> dict[str, Any] | None:
    """The stored and answered form of an exception."""
    if info is None:
        return None
    return {
        "type": info.type,
        "message": info.message,
        "stacktrace": info.stacktrace,
        "frames": [
            {"file": frame.file, "line": frame.line, "function": frame.function}
            for frame in info.frames
        ],
    }


def _status(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ValueError("Must be an HTTP status code (100-599)")
    return value


def _elapsed(value: float) -> float:
    number = float(value)
    if not 0 <= number <= normalize.MAX_ELAPSED_MS:  # also refuses NaN
        raise ValueError(f"Must be between 0 and {normalize.MAX_ELAPSED_MS:g} milliseconds")
    return number


def _user_id(value: str | None) -> str | None:
    if value is None:
        return None
    text = normalize.check_text(value)
    if len(text) > normalize.MAX_TRAFFIC_USER_ID_CHARS:
        raise ValueError(f"Must be at most {normalize.MAX_TRAFFIC_USER_ID_CHARS} characters")
    return text or None


def normalize_exchange(exchange: HttpExchange, config: IngestConfig) -> NormalizedExchange:
    """Validate, normalize, mask and cap one exchange; raises BadRequest naming every bad field.

    Method, status, latency and user id are checked here too, for front-ends whose wire format
    has no schema of its own (compose's pydantic model already refused those, so they pass).
    """
    errors: dict[str, str] = {}
    domain = _collect(
        errors, "domainUrl", normalize.normalize_domain, exchange.domain, exchange.protocol
    )
    pathname = _collect(errors, "pathnameUrl", normalize.normalize_pathname, exchange.pathname)
    # The checks below cost a call each; values already in shape (every compose body, which
    # its model checked, and most spans) skip them. They were 15 of a batch record's 55 us.
    method: str | None = exchange.method
    if method not in _METHODS:
        method = _collect(errors, "method", normalize.parse_method, exchange.method)
    status: int | None = exchange.status
    if type(status) is not int or not 100 <= status <= 599:
        status = _collect(errors, "status", _status, exchange.status)
    elapsed: float | None = exchange.elapsed_ms
    if type(elapsed) is not float or not 0 <= elapsed <= normalize.MAX_ELAPSED_MS:
        elapsed = _collect(errors, "elapsedTime", _elapsed, exchange.elapsed_ms)
    user_id = exchange.user_id
    if user_id is not None and not (
        type(user_id) is str
        and user_id.isascii()  # so no unpaired surrogate
        and "\x00" not in user_id
        and 0 < len(user_id) <= normalize.MAX_TRAFFIC_USER_ID_CHARS
    ):
        user_id = _collect(errors, "trafficUserId", _user_id, user_id)
    trace = exchange.trace_id
    if trace is not None and not _TRACE_ID.match(trace):
        trace = _collect(errors, "traceId", trace_id, trace)
    span = exchange.span_id
    if span is not None and not _SPAN_ID.match(span):
        span = _collect(errors, "spanId", span_id, span)
    route = None
    if exchange.route is not None:
        route = _collect(errors, "routeTemplate", normalize.normalize_route, exchange.route)
    elif config.template_pathnames and pathname is not None:
        templated = normalize.template_pathname(pathname)
        route = templated if templated != pathname else None
    exception = None
    if exchange.exception is not None:
        exception = _collect(errors, "exception", mask_exception, exchange.exception, config)
    request = response = None
    try:
        request = prepare_payload(
            exchange.request_headers,
            _null_text(exchange.request_body),
            config,
            query_params=exchange.query,
            fields=("requestHeaders", "requestBody", "queryParams"),
        )
    except BadRequest as exc:
        errors.update(exc.field_errors)
    try:
        response = prepare_payload(
            exchange.response_headers,
            _null_text(exchange.response_body),
            config,
            fields=("responseHeaders", "responseBody", "responseBody"),
        )
    except BadRequest as exc:
        errors.update(exc.field_errors)
    if (
        errors
        or domain is None
        or pathname is None
        or method is None
        or status is None
        or elapsed is None
        or request is None
        or response is None
    ):
        raise BadRequest("Invalid input data", field_errors=errors)
    origin, protocol = domain
    return NormalizedExchange(
        origin=origin,
        protocol=protocol,
        pathname=pathname,
        status=status,
        method=method,
        level=normalize.level_for(status),
        elapsed_time=elapsed,
        traffic_user_id=user_id,
        request=request,
        response=response,
        client_id=exchange.client_id.lower() if exchange.client_id else None,
        route=route,
        started_at=exchange.started_at,
        trace_id=trace,
        span_id=span,
        exception=exception,
    )


def _core_route(value: str) -> str:
    """Where a log line is filed: its route template, or the logger it came from."""
    text = normalize.check_text(value).strip() or "/"
    if not text.startswith("/"):
        text = "/" + text
    text = re.sub(r"[\s\x00-\x1f\x7f]+", "_", text)
    return text[: normalize.MAX_URL_CHARS]


def normalize_log(line: LogLine, config: IngestConfig) -> LogLine:
    """Validate, mask and cap one log line; raises BadRequest naming every bad field."""
    errors: dict[str, str] = {}
    route = _collect(errors, "route", _core_route, line.route)
    level = _collect(errors, "level", normalize.parse_level, line.level)
    message = _collect(errors, "message", normalize.check_text, line.message)
    attributes = _collect(errors, "attributes", normalize.prepare_document, line.attributes, config)
    method = None
    if line.method is not None:
        method = _collect(errors, "method", normalize.parse_method, line.method)
    status = None if line.status is None else _collect(errors, "status", _status, line.status)
    elapsed = None
    if line.elapsed_ms is not None:
        elapsed = _collect(errors, "elapsedTime", _elapsed, line.elapsed_ms)
    user_id = _collect(errors, "trafficUserId", _user_id, line.user_id)
    trace = _collect(errors, "traceId", trace_id, line.trace_id)
    span = _collect(errors, "spanId", span_id, line.span_id)
    exception = None
    if line.exception is not None:
        exception = _collect(errors, "exception", mask_exception, line.exception, config)
    if errors or route is None or level is None or message is None:
        raise BadRequest("Invalid input data", field_errors=errors)
    return LogLine(
        time=line.time,
        level=level,
        message=mask_text(_cap(message, MAX_LOG_MESSAGE_CHARS), config.masked_keys),
        route=route,
        attributes=attributes,
        trace_id=trace,
        span_id=span,
        method=method,
        status=status,
        elapsed_ms=elapsed,
        user_id=user_id,
        exception=exception,
    )


# --- LLM calls and other spans ----------------------------------------------------------------

MAX_NAME_CHARS = 200
MAX_SPAN_NAME_CHARS = 500
MAX_PROVIDER_CHARS = 100
MAX_OPERATION_CHARS = 50
MAX_ERROR_MESSAGE_CHARS = 2_000
MAX_TOKENS = 2**31 - 1
_SPAN_KINDS = frozenset(("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"))
_SPAN_STATUSES = frozenset(("UNSET", "OK", "ERROR"))


def _name(value: str | None, limit: int = MAX_NAME_CHARS) -> str | None:
    if value is None:
        return None
    text = _cap(normalize.check_text(value).strip(), limit)
    return text or None


def _tokens(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise ValueError(f"Must be a whole number of tokens between 0 and {MAX_TOKENS}")
    return value


def _mask_texts(value: Any, keys: frozenset[str], depth: int = 0) -> Any:
    # A secret in a message's text ("my password=..."), as mask_text finds them in bodies
    # that are not JSON; depth-limited like every walk of client JSON (check_json refuses more).
    if isinstance(value, str):
        return mask_text(value, keys)
    if depth > 64:
        return value
    if isinstance(value, list):
        return [_mask_texts(item, keys, depth + 1) for item in value]
    if isinstance(value, dict):
        return {key: _mask_texts(item, keys, depth + 1) for key, item in value.items()}
    return value


def _content(value: Any, config: IngestConfig) -> Any:
    """Messages masked and capped as bodies are (over the cap, the head of their JSON text),
    and the secrets their texts name masked too."""
    if value is None:
        return None
    body = normalize.prepare_body(_mask_texts(value, config.masked_keys), config)
    return body.text if body.truncated else normalize.load_body(body.text)


def output_text(messages: Any) -> str:
    """The text parts of output messages (GenAI semconv shape), or the value's own text."""
    if isinstance(messages, str):
        return messages
    texts: list[str] = []
    for message in messages if isinstance(messages, list) else [messages]:
        parts = message.get("parts") if isinstance(message, dict) else None
        if isinstance(parts, list):
            for part in parts:
                if isinstance(part, dict) and isinstance(part.get("content"), str):
                    texts.append(part["content"])
        elif isinstance(message, dict) and isinstance(message.get("content"), str):
            texts.append(message["content"])
    return "\n".join(texts)


def record_uuid(value: str | None) -> str | None:
    return value.lower() if value and is_uuid(value) else None


def prompt_uuid(value: str | None) -> str | None:
    """A prompt named as the PromptCrafter API names it (``prompt<digits>``) or by its UUID;
    None for anything else (the call is then kept, attributed to no prompt)."""
    if not value:
        return None
    return from_prefixed("prompt", value) or (value.lower() if is_uuid(value) else None)


def _finish_reasons(values: list[str]) -> list[str]:
    return [text for text in (_name(str(value), 100) for value in values[:20]) if text]


def normalize_generation(call: Generation, config: IngestConfig) -> Generation:
    """Validate, mask and cap one LLM call; raises BadRequest naming every bad field."""
    errors: dict[str, str] = {}
    # Capped to their columns (generations.provider and .operation).
    provider = _collect(errors, "provider", _name, call.provider, MAX_PROVIDER_CHARS)
    operation = _collect(errors, "operation", _name, call.operation, MAX_OPERATION_CHARS)
    request_model = _collect(errors, "requestModel", _name, call.request_model)
    response_model = _collect(errors, "responseModel", _name, call.response_model)
    if not request_model and not response_model and "requestModel" not in errors:
        errors["requestModel"] = "An LLM call must name its model"
    elapsed = _collect(errors, "durationMs", _elapsed, call.duration_ms)
    ttft = None
    if call.time_to_first_token_ms is not None:
        ttft = _collect(errors, "timeToFirstTokenMs", _elapsed, call.time_to_first_token_ms)
    tokens = [
        _collect(errors, field, _tokens, value)
        for field, value in (
            ("inputTokens", call.input_tokens),
            ("outputTokens", call.output_tokens),
            ("cachedTokens", call.cached_tokens),
        )
    ]
    content = [
        _collect(errors, field, _content, value, config)
        for field, value in (
            ("inputMessages", call.input_messages),
            ("outputMessages", call.output_messages),
            ("systemInstructions", call.system_instructions),
        )
    ]
    parameters = None
    if call.parameters is not None:
        parameters = _collect(
            errors, "parameters", normalize.prepare_document, call.parameters, config
        )
    reasons = None
    if call.finish_reasons is not None:
        reasons = _collect(errors, "finishReasons", _finish_reasons, call.finish_reasons)
    error_message = None
    if call.error_message is not None:
        error_message = _collect(
            errors,
            "errorMessage",
            lambda v: mask_text(
                _cap(normalize.check_text(v), MAX_ERROR_MESSAGE_CHARS), config.masked_keys
            ),
            call.error_message,
        )
    trace = _collect(errors, "traceId", trace_id, call.trace_id)
    span = _collect(errors, "spanId", span_id, call.span_id)
    parent = _collect(errors, "parentSpanId", span_id, call.parent_span_id)
    route = None
    if call.route is not None:
        route = _collect(errors, "route", normalize.normalize_route, call.route)
    if errors or elapsed is None or not (request_model or response_model):
        raise BadRequest("Invalid input data", field_errors=errors)
    output = content[1]
    preview = output_text(output)[: config.body_preview_chars] if output is not None else None
    return Generation(
        provider=(provider or "unknown").lower(),
        operation=(operation or "chat").lower(),
        request_model=request_model or response_model or "",
        started_at=call.started_at,
        duration_ms=elapsed,
        response_model=response_model,
        response_id=_name(call.response_id),
        finish_reasons=reasons,
        parameters=parameters,
        input_messages=content[0],
        output_messages=output,
        system_instructions=content[2],
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cached_tokens=tokens[2],
        time_to_first_token_ms=ttft,
        streamed=bool(call.streamed),
        error_type=_name(call.error_type, MAX_EXCEPTION_TYPE_CHARS),
        error_message=error_message,
        trace_id=trace,
        span_id=span,
        parent_span_id=parent,
        route=route,
        # A record id that is no UUID names no record LogHarbor could have: dropped, not stored.
        traffic_record_id=record_uuid(call.traffic_record_id),
        prompt_id=prompt_uuid(call.prompt_id),
        prompt_version=call.prompt_version,
        client_id=call.client_id,
        output_preview=preview or None,
    )


def normalize_span(span: Span, config: IngestConfig) -> Span:
    """Validate, mask and cap one span; raises BadRequest naming every bad field."""
    errors: dict[str, str] = {}
    trace = _collect(errors, "traceId", trace_id, span.trace_id)
    own = _collect(errors, "spanId", span_id, span.span_id)
    parent = _collect(errors, "parentSpanId", span_id, span.parent_span_id)
    name = _collect(errors, "name", _name, span.name, MAX_SPAN_NAME_CHARS)
    elapsed = _collect(errors, "durationMs", _elapsed, span.duration_ms)
    attributes = None
    if span.attributes is not None:
        attributes = _collect(
            errors, "attributes", normalize.prepare_document, span.attributes, config
        )
    if span.kind not in _SPAN_KINDS:
        errors["kind"] = f"Must be one of {', '.join(sorted(_SPAN_KINDS))}"
    if span.status not in _SPAN_STATUSES:
        errors["status"] = f"Must be one of {', '.join(sorted(_SPAN_STATUSES))}"
    if errors or trace is None or own is None or elapsed is None:
        raise BadRequest("Invalid input data", field_errors=errors)
    message = span.status_message
    return Span(
        trace_id=trace,
        span_id=own,
        name=name or "(unnamed)",
        kind=span.kind,
        started_at=span.started_at,
        duration_ms=elapsed,
        status=span.status,
        status_message=_name(message, MAX_ERROR_MESSAGE_CHARS) if message else None,
        parent_span_id=parent,
        service=_name(span.service),
        attributes=attributes,
        client_id=span.client_id,
    )
