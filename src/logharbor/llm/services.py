"""What the API and the pages do with LLM calls, their traces and prices (both call these)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from logharbor.auth.deps import Principal
from logharbor.common.errors import BadRequest, NotFound
from logharbor.common.ids import is_uuid
from logharbor.common.pagination import PageRequest
from logharbor.db.engine import Database
from logharbor.db.writer import GroupCommitWriter
from logharbor.ingest.normalize import prompt_uuid
from logharbor.ingest.normalize import trace_id as checked_trace_id
from logharbor.llm import queries
from logharbor.llm.prices import DEFAULT_PRICES, Price
from logharbor.traffic import queries as traffic_queries
from logharbor.traffic.access import Access, require_source
from logharbor.traffic.normalize import check_text
from logharbor.traffic.record_reads import record_reads

MAX_MODEL_CHARS = 200


@dataclass(frozen=True, slots=True)
class GenerationFilters:
    trace_id: str | None = None
    model: str | None = None
    prompt_id: str | None = None
    traffic_record_id: str | None = None

    def checked(self) -> GenerationFilters:
        errors: dict[str, str] = {}
        trace = self.trace_id
        if trace is not None:
            try:
                trace = checked_trace_id(trace)
            except ValueError as exc:
                errors["traceId"] = str(exc)
        model = self.model
        if model is not None:
            try:
                model = _model_name(model)
            except ValueError as exc:
                errors["model"] = str(exc)
        prompt = prompt_uuid(self.prompt_id)
        if self.prompt_id is not None and prompt is None:
            errors["promptId"] = "Must be a prompt id"
        record = self.traffic_record_id
        if record is not None and not is_uuid(record):
            errors["trafficRecordId"] = "Must be a UUID"
        if errors:
            raise BadRequest("Invalid filters", field_errors=errors)
        return GenerationFilters(trace, model, prompt, record.lower() if record else None)


def list_generations(
    db: Database,
    principal: Principal,
    source_id: str,
    filters: GenerationFilters,
    page: PageRequest,
) -> dict[str, Any]:
    checked = filters.checked()
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
    reads = record_reads(db)
    where = queries.generation_conditions(
        reads.generations,
        source["id"],
        trace_id=checked.trace_id,
        model=checked.model,
        prompt_id=checked.prompt_id,
        traffic_record_id=checked.traffic_record_id,
    )
    rows, total = queries.list_generations(reads, where, page.offset, page.page_limit)
    return page.envelope([queries.generation_json(row) for row in rows], total)


def get_generation(
    db: Database, principal: Principal, source_id: str, generation_id: str
) -> dict[str, Any]:
    missing = NotFound("LLM call not found", field_errors={"generationId": "LLM call not found"})
    if not is_uuid(generation_id):
        raise missing
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
    row = queries.get_generation(record_reads(db), source["id"], generation_id.lower())
    if row is None:
        raise missing
    return queries.generation_json(row, full=True)


def trace(db: Database, principal: Principal, source_id: str, trace_id: str) -> dict[str, Any]:
    """Everything stored of one trace, as a waterfall: HTTP records, LLM calls and other spans,
    each with its start, duration and place in the tree (span and parent span ids)."""
    try:
        trace_id = checked_trace_id(trace_id) or ""
    except ValueError as exc:
        raise BadRequest("Invalid trace id", field_errors={"traceId": str(exc)}) from None
    with db.read() as conn:
        source = require_source(conn, source_id, principal, Access.READ)
    reads = record_reads(db)
    calls = queries.calls_of_trace(reads, source["id"], trace_id)
    others = queries.spans_of_trace(reads, source["id"], trace_id)
    records = reads.of_trace(reads.traffic, reads.record_select(), source["id"], trace_id)
    items: list[dict[str, Any]] = []
    for row in records:
        record = traffic_queries.joined_record_json(row)
        items.append(
            {
                "kind": "http",
                "id": record["id"],
                "name": f"{record['method']} {record['pathname']}",
                "spanId": record["spanId"],
                "parentSpanId": None,
                "start": row["created_at"],
                "durationMs": record["elapsedTime"],
                "status": record["status"],
                "failed": record["status"] >= 500,
            }
        )
    for row in calls:
        items.append(
            {
                "kind": "llm",
                "id": row["id"],
                "name": f"{row['operation']} {row['response_model'] or row['request_model']}",
                "spanId": row["span_id"],
                "parentSpanId": row["parent_span_id"],
                "start": row["created_at"],
                "durationMs": row["duration_ms"],
                "status": row["error_type"] or "ok",
                "failed": row["error_type"] is not None,
                "inputTokens": row["input_tokens"],
                "outputTokens": row["output_tokens"],
                "cost": row["cost"],
            }
        )
    for row in others:
        items.append(
            {
                "kind": "span",
                "id": row["id"],
                "name": row["name"],
                "spanId": row["span_id"],
                "parentSpanId": row["parent_span_id"],
                "start": row["created_at"],
                "durationMs": row["duration_ms"],
                "status": row["status"],
                "failed": row["status"] == "ERROR",
            }
        )
    items.sort(key=lambda item: (item["start"], item["kind"] != "http"))
    return {"traceId": trace_id, "trafficSourceId": source["id"], "items": items}


def _price_json(model: str, price: Price, own: bool) -> dict[str, Any]:
    return {
        "model": model,
        "inputPerMillion": price.input_per_million,
        "outputPerMillion": price.output_per_million,
        "cachedInputPerMillion": price.cached_input_per_million,
        "source": "own" if own else "default",
    }


def list_prices(db: Database, principal: Principal) -> list[dict[str, Any]]:
    """The prices that cost this user's calls: their own, then the defaults they did not set."""
    with db.read() as conn:
        rows = queries.own_prices(conn, principal.user_id)
    own = {
        row["model"]: Price(
            row["input_per_million"], row["output_per_million"], row["cached_input_per_million"]
        )
        for row in rows
    }
    answer = [_price_json(model, price, True) for model, price in sorted(own.items())]
    answer += [
        _price_json(model, price, False)
        for model, price in sorted(DEFAULT_PRICES.items())
        if model not in own
    ]
    return answer


def _model_name(model: str) -> str:
    """Raises ValueError: a name the models' columns can hold on both databases."""
    name = check_text(model).strip()  # no NUL, no lone surrogate (PostgreSQL refuses them)
    if not name or len(name) > MAX_MODEL_CHARS:
        raise ValueError(f"Must be 1 to {MAX_MODEL_CHARS} characters")
    return name


def check_model(model: str) -> str:
    try:
        return _model_name(model).lower()  # prices match models case-blind
    except ValueError as exc:
        raise BadRequest("Invalid model", field_errors={"model": str(exc)}) from None


async def set_price(
    db_writer: Any, principal: Principal, model: str, price: Price
) -> dict[str, Any]:
    name = check_model(model)
    await db_writer.run(lambda tx: queries.set_price(tx.conn, principal.user_id, name, price))
    return _price_json(name, price, True)


async def delete_price(db_writer: GroupCommitWriter, principal: Principal, model: str) -> None:
    name = check_model(model)
    deleted = await db_writer.run(lambda tx: queries.delete_price(tx.conn, principal.user_id, name))
    if not deleted:
        raise NotFound("No price of yours for this model", field_errors={"model": "Not found"})
