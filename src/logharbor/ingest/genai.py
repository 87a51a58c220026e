"""An LLM call read from a span's attributes: the OpenTelemetry GenAI semantic conventions, their
older names, and OpenInference's (Arize Phoenix's convention).

Pure functions of plain attribute values (``otlp`` decodes the wire); the result is a
``Generation`` that the normalize step then checks, masks and caps like any record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from logharbor.ingest.records import Generation

# The event that opentelemetry-instrumentation-openai-v2 (and util-genai) put the content in.
DETAILS_EVENT = "gen_ai.client.inference.operation.details"

_PARAMETER_PREFIX = "gen_ai.request."
_OI_MESSAGE = re.compile(r"^llm\.(input|output)_messages\.(\d+)\.message\.(role|content)$")
_OI_KINDS = {"LLM": "chat", "EMBEDDING": "embeddings"}


def is_genai(keys: str) -> bool:
    """``keys``: the span's attribute keys, each after a newline."""
    return "\ngen_ai." in keys or "\nllm." in keys or "\nopeninference.span.kind" in keys


def _text(attrs: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def _int(attrs: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
    return None


def _float(attrs: Mapping[str, Any], key: str) -> float | None:
    value = attrs.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _json(value: Any) -> Any:
    """Messages travel as JSON text in span attributes, as structured values in events."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _openinference_messages(attrs: Mapping[str, Any], side: str) -> list[dict[str, Any]] | None:
    found: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        match = _OI_MESSAGE.match(key)
        if match is None or match.group(1) != side or not isinstance(value, str):
            continue
        message = found.setdefault(int(match.group(2)), {"role": "user", "parts": []})
        if match.group(3) == "role":
            message["role"] = value
        else:
            message["parts"] = [{"type": "text", "content": value}]
    return [found[index] for index in sorted(found)] or None


def _value_messages(value: str | None, role: str) -> Any:
    """OpenInference's ``input.value``/``output.value``: JSON or plain text."""
    if value is None:
        return None
    parsed = _json(value)
    if isinstance(parsed, (list, dict)):
        return parsed
    return [{"role": role, "parts": [{"type": "text", "content": value}]}]


def generation_of(
    attrs: Mapping[str, Any],
    events: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    started_at: datetime,
    duration_ms: float,
    failed: bool,
    status_message: str | None,
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    client_id: str,
) -> Generation:
    """The call a span describes; ``events`` are its events as (name, plain attributes)."""
    details: Mapping[str, Any] = next(
        (a for name, a in reversed(events) if name == DETAILS_EVENT), {}
    )
    content = {**details, **{k: v for k, v in attrs.items() if k.startswith("gen_ai.")}}
    parameters = {
        key[len(_PARAMETER_PREFIX) :]: value
        for key, value in attrs.items()
        if key.startswith(_PARAMETER_PREFIX) and key != "gen_ai.request.model"
    }
    invocation = _json(attrs.get("llm.invocation_parameters"))
    if isinstance(invocation, dict):
        parameters = {**invocation, **parameters}
    reasons = attrs.get("gen_ai.response.finish_reasons")
    if isinstance(reasons, str):
        reasons = [reasons]
    exception = next((a for name, a in reversed(events) if name == "exception"), None)
    error_type = _text(attrs, "error.type")
    error_message = status_message
    if exception is not None:
        error_type = error_type or _text(exception, "exception.type")
        error_message = error_message or _text(exception, "exception.message")
    if failed and error_type is None:
        error_type = "error"
    input_messages = _json(content.get("gen_ai.input.messages"))
    if input_messages is None:
        input_messages = _openinference_messages(attrs, "input") or _value_messages(
            _text(attrs, "input.value"), "user"
        )
    output_messages = _json(content.get("gen_ai.output.messages"))
    if output_messages is None:
        output_messages = _openinference_messages(attrs, "output") or _value_messages(
            _text(attrs, "output.value"), "assistant"
        )
    if not isinstance(reasons, list) and isinstance(output_messages, list):
        # A streamed call's span may carry them only in its output messages (openai-v2 does).
        reasons = [
            m["finish_reason"]
            for m in output_messages
            if isinstance(m, dict) and isinstance(m.get("finish_reason"), str)
        ] or None
    kind = _text(attrs, "openinference.span.kind")
    streamed = attrs.get("logharbor.llm.streamed", attrs.get("gen_ai.is_streaming"))
    return Generation(
        provider=_text(attrs, "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
        or "unknown",
        operation=_text(attrs, "gen_ai.operation.name") or _OI_KINDS.get(kind or "", "chat"),
        request_model=_text(attrs, "gen_ai.request.model", "llm.model_name")
        or _text(attrs, "gen_ai.response.model")
        or "",
        started_at=started_at,
        duration_ms=duration_ms,
        response_model=_text(attrs, "gen_ai.response.model", "llm.model_name"),
        response_id=_text(attrs, "gen_ai.response.id"),
        finish_reasons=[str(r) for r in reasons] if isinstance(reasons, list) else None,
        parameters=parameters or None,
        input_messages=input_messages,
        output_messages=output_messages,
        system_instructions=_json(content.get("gen_ai.system_instructions")),
        input_tokens=_int(
            attrs,
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",
            "llm.token_count.prompt",
        ),
        output_tokens=_int(
            attrs,
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.token_count.completion",
        ),
        cached_tokens=_int(
            attrs,
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
            "gen_ai.usage.input_tokens.cached",
            "llm.token_count.prompt_details.cache_read",
        ),
        time_to_first_token_ms=_float(attrs, "logharbor.llm.time_to_first_token_ms"),
        streamed=streamed is True,
        error_type=error_type if (failed or error_type) else None,
        error_message=error_message if (failed or error_type) else None,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        route=_text(attrs, "http.route"),
        traffic_record_id=_text(attrs, "logharbor.record.id"),
        prompt_id=_text(attrs, "logharbor.prompt.id"),
        prompt_version=_int(attrs, "logharbor.prompt.version"),
        client_id=client_id,
    )


# What a details event may add to the call its span describes: content, and what the span
# left out. Not the model, provider, tokens or cost when the call is stored already: those are
# counted in the rollups as the span gave them (see ``merge_details``).
DETAIL_FIELDS = (
    "input_messages",
    "output_messages",
    "system_instructions",
    "output_preview",
    "response_id",
    "finish_reasons",
)
# Also taken when the event arrives first: the call is then stored (and counted) once, whole.
DETAIL_FIELDS_BEFORE_STORING = (
    *DETAIL_FIELDS,
    "response_model",
    "parameters",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "time_to_first_token_ms",
)
# The words of a call, which a source may keep out of LogHarbor (the rest is numbers and ids).
CONTENT_FIELDS = ("input_messages", "output_messages", "system_instructions", "output_preview")
# A model the event did not name: never merged (a stored call always names its own).
NO_MODEL = "unknown"


def details_of(
    attrs: Mapping[str, Any], *, time: datetime, trace_id: str, span_id: str
) -> Generation:
    """The call a ``gen_ai.client.inference.operation.details`` event describes, as far as it
    does (the normalize step then masks and caps it like a call); ``attrs`` plain values."""
    call = generation_of(
        attrs,
        [],
        started_at=time,
        duration_ms=0.0,
        failed=False,
        status_message=None,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=None,
        client_id=span_id,  # unused: details are never stored as a call of their own
    )
    if not call.request_model:
        call.request_model = NO_MODEL
    return call


def detail_values(details: Generation) -> dict[str, Any]:
    """What a normalized details event holds for its call, by field (None values left out)."""
    values = {name: getattr(details, name) for name in DETAIL_FIELDS_BEFORE_STORING}
    return {name: value for name, value in values.items() if value is not None}


def merge_details(call: Generation, values: Mapping[str, Any]) -> Generation:
    """``call`` with what its span left out taken from its details event (``detail_values``)."""
    for name in DETAIL_FIELDS_BEFORE_STORING:
        if getattr(call, name) is None and values.get(name) is not None:
            setattr(call, name, values[name])
    return call
