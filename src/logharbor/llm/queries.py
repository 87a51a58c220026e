"""SQL of LLM calls: what their store needs to know (prices, prompts it may attribute), and
what the API and pages read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
from logharbor.db import events_schema
from logharbor.db.bulk import upsertable_insert
from logharbor.db.clickhouse import EventsClient, literal
from logharbor.db.clickhouse_sql import scalar
from logharbor.db.tables import (
    generation_details,
    generations,
    model_prices,
    prompt_logs,
    prompts,
    traffic_sources,
)
from logharbor.llm.prices import Price
from logharbor.traffic import clickhouse_queries
from logharbor.traffic.record_reads import RecordReads


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
    table: Table,
    source_id: str,
    *,
    trace_id: str | None = None,
    model: str | None = None,
    prompt_id: str | None = None,
    traffic_record_id: str | None = None,
) -> list[ColumnElement[bool]]:
    """The filters of a list of LLM calls, on ``generations`` of either store."""
    c = table.c
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
    reads: RecordReads, where: list[ColumnElement[bool]], offset: int, limit: int
) -> tuple[Sequence[Mapping[Any, Any]], int]:
    table = reads.generations
    query = (
        select(table)
        .where(*where)
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return reads.rows(query), reads.count(table, where)


def get_generation(
    reads: RecordReads, source_id: str, generation_id: str
) -> Mapping[Any, Any] | None:
    table = reads.generations
    where = [table.c.id == generation_id, table.c.traffic_source_id == source_id]
    if reads.events is not None:
        located = clickhouse_queries.locate(reads.events, "generations", [generation_id])
        if located is None:
            return None
        where += located(table)
    found = reads.rows(select(table).where(*where).limit(1))
    return found[0] if found else None


def calls_of_trace(
    reads: RecordReads, source_id: str, trace_id: str
) -> Sequence[Mapping[Any, Any]]:
    table = reads.generations
    return reads.of_trace(table, select(table), source_id, trace_id)


def spans_of_trace(
    reads: RecordReads, source_id: str, trace_id: str
) -> Sequence[Mapping[Any, Any]]:
    table = reads.spans
    return reads.of_trace(table, select(table), source_id, trace_id)


def call_figures(reads: RecordReads, generation_ids: Iterable[str]) -> dict[str, Mapping[Any, Any]]:
    """The figures of these LLM calls that their prompt logs show, by id; a call no longer
    stored (pruned, its source deleted) is missing."""
    wanted = sorted(set(generation_ids))
    if not wanted:
        return {}
    table = reads.generations
    where = [table.c.id.in_(wanted)]
    if reads.events is not None:
        # Located first: a read by id alone would scan every source's calls.
        located = clickhouse_queries.locate(reads.events, "generations", wanted)
        if located is None:
            return {}
        where = located(table)
    c = table.c
    query = select(
        c.id,
        c.traffic_source_id,
        c.trace_id,
        c.input_tokens,
        c.output_tokens,
        c.cost,
        c.duration_ms,
    ).where(*where)
    return {row["id"]: row for row in reads.rows(query)}


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


def calls_of_spans_query(table: Table, source_id: str, keys: Iterable[SpanKey]) -> Any:
    """The stored calls of these spans (id and the fields a details event may fill), in
    ``generations`` of either store."""
    wanted = sorted(set(keys))
    c = table.c
    return select(
        c.id,
        c.traffic_source_id,
        c.trace_id,
        c.span_id,
        c.input_messages,
        c.output_messages,
        c.system_instructions,
        c.output_preview,
        c.response_id,
        c.finish_reasons,
    ).where(
        c.traffic_source_id == source_id,
        c.trace_id.in_(sorted({trace for trace, _ in wanted})),
        _span_condition(table, wanted),
    )


def calls_of_spans(
    conn: Connection, source_id: str, keys: Iterable[SpanKey]
) -> dict[SpanKey, RowMapping]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    query = calls_of_spans_query(generations, source_id, wanted)
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


def forget_prompt_on_events(client: EventsClient, prompt_id: str) -> None:
    """LLM calls attributed to a deleted prompt name none (as the SQL schema's SET NULL)."""
    calls = events_schema.generations
    if scalar(client, select(func.count()).where(calls.c.prompt_id == prompt_id)):
        events_schema.alter_local_tables(
            client, "generations", f"UPDATE prompt_id = NULL WHERE prompt_id = {literal(prompt_id)}"
        )
        client.wait_for_mutations()
