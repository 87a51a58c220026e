"""SQL of LLM calls: what their store needs to know (prices, prompts it may attribute), and
what the API and pages read."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    Table,
    and_,
    delete,
    func,
    or_,
    select,
    text,
    update,
)

from logharbor.common.ids import new_id, to_prefixed
from logharbor.common.timestamps import utcnow
from logharbor.db.bulk import upsertable_insert
from logharbor.db.tables import (
    generation_details,
    generations,
    model_prices,
    prompt_logs,
    prompts,
    spans,
    traffic_sources,
)
from logharbor.llm.prices import Price


def own_prices_of_source(conn: Connection, source_id: str) -> dict[str, Price]:
    """The prices the owner of ``source_id`` set (models in lower case)."""
    query = (
        select(
            model_prices.c.model,
            model_prices.c.input_per_million,
            model_prices.c.output_per_million,
            model_prices.c.cached_input_per_million,
        )
        .join(traffic_sources, traffic_sources.c.user_id == model_prices.c.user_id)
        .where(traffic_sources.c.id == source_id)
    )
    return {
        row.model.lower(): Price(
            row.input_per_million, row.output_per_million, row.cached_input_per_million
        )
        for row in conn.execute(query)
    }


def captures_content(conn: Connection, source_id: str) -> bool:
    """Whether ``source_id`` keeps its LLM calls' content (a missing source keeps nothing)."""
    query = select(traffic_sources.c.capture_llm_content).where(traffic_sources.c.id == source_id)
    return bool(conn.execute(query).scalar())


def attributable_prompts(
    conn: Connection, source_id: str, prompt_ids: Iterable[str]
) -> dict[str, int]:
    """Of ``prompt_ids``, those the owner of ``source_id`` owns, with their current version: a
    call is only ever attributed to a prompt of its source's owner."""
    wanted = sorted(set(prompt_ids))
    if not wanted:
        return {}
    query = (
        select(prompts.c.id, prompts.c.version)
        .join(traffic_sources, traffic_sources.c.user_id == prompts.c.owner_id)
        .where(traffic_sources.c.id == source_id, prompts.c.id.in_(wanted))
    )
    return {row.id: row.version for row in conn.execute(query)}


def generation_json(row: Any, *, full: bool = False) -> dict[str, Any]:
    answer = {
        "id": row["id"],
        "trafficSourceId": row["traffic_source_id"],
        "traceId": row["trace_id"],
        "spanId": row["span_id"],
        "parentSpanId": row["parent_span_id"],
        "trafficRecordId": row["traffic_record_id"],
        "route": row["route"],
        "provider": row["provider"],
        "operation": row["operation"],
        "requestModel": row["request_model"],
        "responseModel": row["response_model"],
        "finishReasons": row["finish_reasons"],
        "inputTokens": row["input_tokens"],
        "outputTokens": row["output_tokens"],
        "cachedTokens": row["cached_tokens"],
        "cost": row["cost"],
        "durationMs": row["duration_ms"],
        "timeToFirstTokenMs": row["time_to_first_token_ms"],
        "streamed": row["streamed"],
        "errorType": row["error_type"],
        "errorMessage": row["error_message"],
        "promptId": to_prefixed("prompt", row["prompt_id"]) if row["prompt_id"] else None,
        "promptVersion": row["prompt_version"],
        "outputPreview": row["output_preview"],
        "createdAt": row["created_at"],
    }
    if full:
        answer.update(
            responseId=row["response_id"],
            parameters=row["parameters"],
            inputMessages=row["input_messages"],
            outputMessages=row["output_messages"],
            systemInstructions=row["system_instructions"],
        )
    return answer


def generation_conditions(
    source_id: str,
    *,
    trace_id: str | None = None,
    model: str | None = None,
    prompt_id: str | None = None,
    traffic_record_id: str | None = None,
) -> list[ColumnElement[bool]]:
    c = generations.c
    where: list[ColumnElement[bool]] = [c.traffic_source_id == source_id]
    if trace_id is not None:
        where.append(c.trace_id == trace_id)
    if model is not None:
        where.append(or_(c.request_model == model, c.response_model == model))
    if prompt_id is not None:
        where.append(c.prompt_id == prompt_id)
    if traffic_record_id is not None:
        where.append(c.traffic_record_id == traffic_record_id)
    return where


def list_generations(
    conn: Connection, where: list[ColumnElement[bool]], offset: int, limit: int
) -> tuple[list[RowMapping], int]:
    query = (
        select(generations)
        .where(*where)
        .order_by(generations.c.created_at.desc(), generations.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    rows = list(conn.execute(query).mappings())
    total = conn.execute(select(func.count()).select_from(generations).where(*where)).scalar_one()
    return rows, int(total)


def get_generation(conn: Connection, source_id: str, generation_id: str) -> RowMapping | None:
    query = select(generations).where(
        generations.c.id == generation_id, generations.c.traffic_source_id == source_id
    )
    return conn.execute(query).mappings().first()


def calls_of_trace(conn: Connection, source_id: str, trace_id: str) -> list[RowMapping]:
    query = (
        select(generations)
        .where(generations.c.traffic_source_id == source_id, generations.c.trace_id == trace_id)
        .order_by(generations.c.created_at, generations.c.id)
    )
    return list(conn.execute(query).mappings())


def spans_of_trace(conn: Connection, source_id: str, trace_id: str) -> list[RowMapping]:
    query = (
        select(spans)
        .where(spans.c.traffic_source_id == source_id, spans.c.trace_id == trace_id)
        .order_by(spans.c.created_at, spans.c.id)
    )
    return list(conn.execute(query).mappings())


def own_prices(conn: Connection, user_id: str) -> list[RowMapping]:
    query = select(model_prices).where(model_prices.c.user_id == user_id)
    return list(conn.execute(query.order_by(model_prices.c.model)).mappings())


def set_price(conn: Connection, user_id: str, model: str, price: Price) -> None:
    values = {
        "input_per_million": price.input_per_million,
        "output_per_million": price.output_per_million,
        "cached_input_per_million": price.cached_input_per_million,
        "updated_at": utcnow(),
    }
    statement = upsertable_insert(conn.dialect.name, model_prices).values(
        id=new_id(), user_id=user_id, model=model, **values
    )
    conn.execute(statement.on_conflict_do_update(index_elements=["user_id", "model"], set_=values))


def delete_price(conn: Connection, user_id: str, model: str) -> bool:
    result = conn.execute(
        delete(model_prices).where(model_prices.c.user_id == user_id, model_prices.c.model == model)
    )
    return bool(result.rowcount)


def delete_old(conn: Connection, table: Table, source_id: str, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the source's ``generations``, ``spans`` or
    ``generation_details`` rows older than ``cutoff`` (they follow their records' retention)."""
    ids = select(table.c.id).where(
        table.c.traffic_source_id == source_id, table.c.created_at < cutoff
    )
    found = list(conn.execute(ids.limit(limit)).scalars())
    if found:
        conn.execute(delete(table).where(table.c.id.in_(found)))
    return len(found)


# --- a details event's content, meeting its call --------------------------------------------

SpanKey = tuple[str, str]  # (trace id, span id)


def lock_spans(conn: Connection, source_id: str, keys: Iterable[SpanKey]) -> None:
    """Hold these spans of ``source_id`` for the rest of the transaction (PostgreSQL), so that a
    call's span and its details event written at once by two processes meet one after the
    other: neither can miss the other's uncommitted row. SQLite has one writer at a time."""
    if conn.dialect.name != "postgresql":
        return
    wanted = sorted({f"{source_id}:{trace}:{span}" for trace, span in keys})
    if not wanted:
        return
    # In one order (the sort below is kept: PostgreSQL never flattens an ordered subquery), so
    # that two transactions locking overlapping spans cannot deadlock.
    conn.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(h)) FROM "
            "(SELECT hashtextextended(k, 0) AS h FROM unnest(CAST(:keys AS text[])) AS k "
            "ORDER BY 1) AS ordered"
        ),
        {"keys": wanted},
    )


def _span_condition(table: Table, keys: Iterable[SpanKey]) -> ColumnElement[bool]:
    return or_(*(and_(table.c.trace_id == trace, table.c.span_id == span) for trace, span in keys))


def take_waiting_details(
    conn: Connection, source_id: str, keys: Iterable[SpanKey]
) -> dict[SpanKey, dict[str, Any]]:
    """The details waiting for these spans' calls, deleted: their calls take them now."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    where = and_(
        generation_details.c.traffic_source_id == source_id,
        generation_details.c.trace_id.in_(sorted({trace for trace, _ in wanted})),
        _span_condition(generation_details, wanted),
    )
    rows = conn.execute(
        select(
            generation_details.c.trace_id,
            generation_details.c.span_id,
            generation_details.c.details,
        ).where(where)
    ).all()
    if rows:
        conn.execute(delete(generation_details).where(where))
    return {(row.trace_id, row.span_id): dict(row.details) for row in rows}


def calls_of_spans(
    conn: Connection, source_id: str, keys: Iterable[SpanKey]
) -> dict[SpanKey, RowMapping]:
    """The stored calls of these spans (id and the fields a details event may fill)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    query = select(
        generations.c.id,
        generations.c.trace_id,
        generations.c.span_id,
        generations.c.input_messages,
        generations.c.output_messages,
        generations.c.system_instructions,
        generations.c.output_preview,
        generations.c.response_id,
        generations.c.finish_reasons,
    ).where(
        generations.c.traffic_source_id == source_id,
        generations.c.trace_id.in_(sorted({trace for trace, _ in wanted})),
        _span_condition(generations, wanted),
    )
    return {(row.trace_id, row.span_id): row for row in conn.execute(query).mappings()}


def fill_call(conn: Connection, generation_id: str, values: dict[str, Any]) -> None:
    """Set these fields of a stored call (the caller chose those it lacks)."""
    conn.execute(update(generations).where(generations.c.id == generation_id).values(**values))


def fill_prompt_log_output(conn: Connection, generation_id: str, output: str) -> None:
    """The prompt log made from a call whose output was not known then gets it now."""
    conn.execute(
        update(prompt_logs)
        .where(prompt_logs.c.generation_id == generation_id, prompt_logs.c.output == "")
        .values(output=output)
    )


def wait_details(
    conn: Connection, source_id: str, waiting: dict[SpanKey, tuple[dict[str, Any], datetime]]
) -> None:
    """Keep details until their call's span arrives; a span's details kept already stay as
    they are (an exporter's retry sends the same)."""
    if not waiting:
        return
    statement = upsertable_insert(conn.dialect.name, generation_details).on_conflict_do_nothing(
        index_elements=["traffic_source_id", "trace_id", "span_id"]
    )
    conn.execute(
        statement,
        [
            {
                "id": new_id(),
                "traffic_source_id": source_id,
                "trace_id": trace,
                "span_id": span,
                "details": values,
                "created_at": created_at,
            }
            for (trace, span), (values, created_at) in sorted(waiting.items())
        ],
    )
