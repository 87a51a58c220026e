"""The record store: where stored records, their payloads and their names live.

``RecordStore`` is what the pipeline needs of a store, and all it needs: inserts in batches,
and for retries one lookup of the client ids it was given. ``SqlRecordStore`` keeps records
in the SQL database (SQLite or PostgreSQL); a columnar engine can implement the same protocol.

A SQL store refers to domains and pathnames by id. Their ids are cached per process
(``NameCache``) so that a warm source stores a batch with inserts alone: no read before the
write. The cache is a hint, never the authority: an id cached from a transaction that rolled
back, or of a domain deleted since, fails a foreign key, and the pipeline then forgets the
source's names and stores its items again with fresh lookups.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cachetools import LRUCache
from sqlalchemy import Connection, Dialect, exists, insert, or_, select

from logharbor.common.errors import Conflict, LogHarborError
from logharbor.common.ids import new_ids
from logharbor.db.bulk import BulkInsert
from logharbor.db.tables import (
    core_logs,
    generations,
    http_traffic,
    prompt_logs,
    requests,
    responses,
    spans,
)
from logharbor.db.writer import WriteTx
from logharbor.ingest import genai
from logharbor.ingest.normalize import exception_json, output_text
from logharbor.ingest.records import Generation, LogLine, NormalizedExchange, Span
from logharbor.llm import prices
from logharbor.llm import queries as llm_queries
from logharbor.traffic import queries


@dataclass(slots=True)
class PendingExchange:
    """An exchange with the ids and time the pipeline gave it, ready for a store."""

    id: str
    request_id: str
    response_id: str
    created_at: datetime
    record: NormalizedExchange


@dataclass(slots=True)
class StoredExchange:
    pending: PendingExchange
    domain_id: str
    domain: str
    protocol: str
    pathname_id: str
    pathname: str
    route_pathname_id: str | None


@dataclass(slots=True)
class PendingLog:
    id: str
    created_at: datetime
    line: LogLine


@dataclass(slots=True)
class StoredLog:
    pending: PendingLog
    core_pathname_id: str


@dataclass(slots=True)
class PendingGeneration:
    id: str
    created_at: datetime
    call: Generation


@dataclass(slots=True)
class StoredGeneration:
    pending: PendingGeneration
    # What the store decided: the call's cost at today's prices, and the prompt version it is
    # attributed to (None when the sender named no prompt, or one not its owner's).
    cost: float | None
    prompt_id: str | None
    prompt_version: int | None


@dataclass(slots=True)
class PendingSpan:
    id: str
    created_at: datetime
    span: Span


class RecordStore(Protocol):
    def find_stored(
        self, tx: WriteTx, source_id: str, ids: Sequence[str]
    ) -> dict[str, dict[str, Any] | LogHarborError]:
        """Records already stored under these client ids, this transaction's included: the
        stored record's JSON (a retry), or the Conflict to answer when the id is another
        source's."""

    def stage(self, dialect: Dialect, source_id: str, pending: Sequence[PendingExchange]) -> Any:
        """What ``insert_exchanges`` can prepare without the database (None: nothing), so that
        a writer does it before it takes the write lock."""

    def insert_exchanges(
        self,
        tx: WriteTx,
        source_id: str,
        pending: Sequence[PendingExchange],
        staged: Any = None,
    ) -> list[StoredExchange]:
        """Store every exchange (with its request and response) in ``tx``;
        ``staged`` is what ``stage`` returned for these very exchanges, if anything."""

    def insert_logs(
        self, tx: WriteTx, source_id: str, pending: Sequence[PendingLog]
    ) -> list[StoredLog]:
        """Store every log line in ``tx``."""

    def insert_generations(
        self, tx: WriteTx, source_id: str, pending: Sequence[PendingGeneration]
    ) -> list[StoredGeneration]:
        """Store every LLM call, costed, and a prompt log for each successful call made from
        a prompt of the source's owner."""

    def insert_spans(self, tx: WriteTx, source_id: str, pending: Sequence[PendingSpan]) -> None:
        """Store every span."""

    def stored_ids(
        self, tx: WriteTx, source_id: str, kind: str, ids: Sequence[str], *, careful: bool
    ) -> set[str]:
        """Of ``ids``, those already stored as ``kind`` ("generations" or "spans"): a retry
        stores each once. Not ``careful`` (a group's bulk run), a store whose inserts fail on
        a stored id may answer without looking."""

    def take_details(
        self,
        tx: WriteTx,
        source_id: str,
        calls: Sequence[tuple[str, str]],
        events: Sequence[tuple[str, str]],
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The details events (``genai.detail_values``) that came before the spans of
        ``calls``, by (trace id, span id), no longer kept apart once returned. First the spans
        of ``calls`` and ``events`` are held for the transaction, so that a call's span and
        its event stored at once by two writers meet one after the other."""

    def attach_details(
        self, tx: WriteTx, source_id: str, details: Sequence[Generation], now: datetime
    ) -> None:
        """Add each details event (normalized) to its stored call, the fields it lacks
        (``genai.DETAIL_FIELDS``); or keep it for the call until its span arrives. A retry
        changes nothing."""

    def forget(self, source_id: str) -> None:
        """Drop whatever this process cached about ``source_id`` (a write failed)."""

    def insert_linked(
        self, tx: WriteTx, kind: str, row: dict[str, Any], names: dict[str, Any]
    ) -> None:
        """Store one traffic row or core log (``kind``) made by the entity API from rows
        created before: ``row`` holds its columns, ``names`` its domain, pathname and the
        request and response rows it links."""

    def payload_linked(self, conn: Connection, column: str, payload_id: str) -> bool:
        """Whether a stored record links this request or response (``column``)."""


# --- SQL --------------------------------------------------------------------------------------

_PAYLOAD_COLUMNS = (
    "id",
    "traffic_source_id",
    "owner_user_id",
    "headers",
    "body",
    "body_preview",
    "body_size",
    "body_truncated",
)
# The requests and responses columns every ingest path writes (the benches insert the same).
REQUEST_COLUMNS = (*_PAYLOAD_COLUMNS, "query_params", "created_at")
RESPONSE_COLUMNS = (*_PAYLOAD_COLUMNS, "created_at")
_insert_requests = BulkInsert(requests, REQUEST_COLUMNS)
_insert_responses = BulkInsert(responses, RESPONSE_COLUMNS)
# The http_traffic columns every ingest path writes (the benches insert the same raw rows).
TRAFFIC_COLUMNS = (
    "id",
    "traffic_source_id",
    "domain_id",
    "pathname_id",
    "status",
    "method",
    "level",
    "elapsed_time",
    "traffic_user_id",
    "request_id",
    "response_id",
    "created_at",
    "route_pathname_id",
    "trace_id",
    "span_id",
    "exception",
)
_insert_traffic = BulkInsert(http_traffic, TRAFFIC_COLUMNS)
_EXCHANGE_INSERTS = (_insert_requests, _insert_responses, _insert_traffic)
_insert_core_logs = BulkInsert(
    core_logs,
    (
        "id",
        "traffic_source_id",
        "core_pathname_id",
        "status",
        "method",
        "level",
        "elapsed_time",
        "traffic_user_id",
        "created_at",
        "trace_id",
        "span_id",
        "exception",
        "message",
        "attributes",
    ),
)

GENERATION_COLUMNS = (
    "id",
    "traffic_source_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "traffic_record_id",
    "route",
    "provider",
    "operation",
    "request_model",
    "response_model",
    "response_id",
    "finish_reasons",
    "parameters",
    "input_messages",
    "output_messages",
    "system_instructions",
    "output_preview",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost",
    "duration_ms",
    "time_to_first_token_ms",
    "streamed",
    "error_type",
    "error_message",
    "prompt_id",
    "prompt_version",
    "created_at",
)
_insert_generations = BulkInsert(generations, GENERATION_COLUMNS)
_insert_prompt_logs = BulkInsert(
    prompt_logs,
    (
        "id",
        "prompt_id",
        "prompt_version",
        "output",
        "notes",
        "model_used",
        "score",
        "created_at",
        "generation_id",
    ),
)
SPAN_COLUMNS = (
    "id",
    "traffic_source_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "service",
    "duration_ms",
    "status",
    "status_message",
    "attributes",
    "created_at",
)
_insert_spans = BulkInsert(spans, SPAN_COLUMNS)
_ID_TABLES = {"generations": generations, "spans": spans}


def stored_answers(
    rows: Iterable[Mapping[Any, Any]], source_id: str
) -> dict[str, dict[str, Any] | LogHarborError]:
    """What a retry of each stored record (a joined, full row) is answered: the record, or a
    Conflict when the id is another source's (that record alone is refused: the others of a
    batch are still stored). The first row of an id counts."""
    found: dict[str, dict[str, Any] | LogHarborError] = {}
    for row in rows:
        if row["id"] in found:
            continue
        if row["traffic_source_id"] != source_id:
            found[row["id"]] = Conflict(
                "A record with this id belongs to another traffic source",
                field_errors={"id": "Already used by another record"},
            )
        else:
            found[row["id"]] = queries.joined_record_json(row, full=True)
    return found


class NameCache:
    """Domain, pathname and core pathname ids per traffic source (see the module's docstring)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._lock = threading.Lock()
        # (source_id, origin) -> (domain_id, value, protocol)
        self._domains: LRUCache[tuple[str, str], tuple[str, str, str]] = LRUCache(max_entries)
        # (source_id, domain_id, pathname) -> pathname_id; (source_id, "", route) for core ones
        self._pathnames: LRUCache[tuple[str, str, str], str] = LRUCache(max_entries)
        self.hits = 0
        self.misses = 0

    def cached_domain(self, source_id: str, origin: str) -> tuple[str, str, str] | None:
        with self._lock:
            return self._domains.get((source_id, origin))

    def cached_pathname(self, source_id: str, domain_id: str, path: str) -> str | None:
        with self._lock:
            return self._pathnames.get((source_id, domain_id, path))

    def cached_names(
        self, source_id: str, pending: Sequence[PendingExchange]
    ) -> tuple[dict[str, tuple[str, str, str]], dict[tuple[str, str], str]] | None:
        """The domains and pathnames of ``pending`` by (origin) and (origin, value), when
        every one is cached: what a store can prepare before the write lock. None otherwise."""
        domains: dict[str, tuple[str, str, str]] = {}
        for origin in {p.record.origin for p in pending}:
            domain = self.cached_domain(source_id, origin)
            if domain is None:
                return None
            domains[origin] = domain
        pathnames: dict[tuple[str, str], str] = {}
        for origin, value in pathnames_of(pending):
            pathname_id = self.cached_pathname(source_id, domains[origin][0], value)
            if pathname_id is None:
                return None
            pathnames[(origin, value)] = pathname_id
        return domains, pathnames

    def domain(
        self, conn: Connection, source_id: str, origin: str, protocol: str
    ) -> tuple[str, str, str]:
        key = (source_id, origin)
        with self._lock:
            found = self._domains.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        row = queries.get_or_create_domain(conn, source_id, origin, protocol)
        value = (row["id"], row["value"], row["protocol"])
        with self._lock:
            self._domains[key] = value
        return value

    def pathname(self, conn: Connection, source_id: str, domain_id: str, path: str) -> str:
        key = (source_id, domain_id, path)
        with self._lock:
            found = self._pathnames.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        pathname_id: str = queries.get_or_create_pathname(conn, source_id, domain_id, path)["id"]
        with self._lock:
            self._pathnames[key] = pathname_id
        return pathname_id

    def core_pathname(self, conn: Connection, source_id: str, route: str) -> str:
        key = (source_id, "", route)
        with self._lock:
            found = self._pathnames.get(key)
        if found is not None:
            return found
        core_id: str = queries.get_or_create_core_pathname(conn, source_id, route)["id"]
        with self._lock:
            self._pathnames[key] = core_id
        return core_id

    def forget(self, source_id: str) -> None:
        with self._lock:
            for domain in [key for key in self._domains if key[0] == source_id]:
                del self._domains[domain]
            for pathname in [key for key in self._pathnames if key[0] == source_id]:
                del self._pathnames[pathname]


class SqlRecordStore:
    def __init__(self, names: NameCache | None = None) -> None:
        self.names = names or NameCache()

    def insert_linked(
        self, tx: WriteTx, kind: str, row: dict[str, Any], names: dict[str, Any]
    ) -> None:
        tx.conn.execute(insert(core_logs if kind == "core_logs" else http_traffic).values(**row))

    def payload_linked(self, conn: Connection, column: str, payload_id: str) -> bool:
        linked = select(
            or_(
                exists().where(http_traffic.c[column] == payload_id),
                exists().where(core_logs.c[column] == payload_id),
            )
        )
        return bool(conn.execute(linked).scalar())

    def forget(self, source_id: str) -> None:
        self.names.forget(source_id)

    def stored_ids(
        self, tx: WriteTx, source_id: str, kind: str, ids: Sequence[str], *, careful: bool
    ) -> set[str]:
        # In bulk nothing is read: a stored id fails the insert on the primary key, and the
        # careful run looks.
        if not ids or not careful:
            return set()
        table = _ID_TABLES[kind]
        query = select(table.c.id).where(table.c.id.in_(sorted(set(ids))))
        return set(tx.conn.execute(query).scalars())

    def take_details(
        self,
        tx: WriteTx,
        source_id: str,
        calls: Sequence[tuple[str, str]],
        events: Sequence[tuple[str, str]],
    ) -> dict[tuple[str, str], dict[str, Any]]:
        conn = tx.conn
        llm_queries.lock_spans(conn, source_id, [*calls, *events])
        return llm_queries.take_waiting_details(conn, source_id, calls)

    def attach_details(
        self, tx: WriteTx, source_id: str, details: Sequence[Generation], now: datetime
    ) -> None:
        if not details:
            return
        conn = tx.conn
        keep_content = llm_queries.captures_content(conn, source_id)
        wanted: dict[tuple[str, str], tuple[dict[str, Any], datetime]] = {}
        for item in details:
            values = genai.detail_values(item)
            if not keep_content:
                for name in genai.CONTENT_FIELDS:
                    values.pop(name, None)
            # Filed at the event's time (never ahead of ours): retention ages it like a call.
            wanted[(item.trace_id or "", item.span_id or "")] = (values, min(item.started_at, now))
        llm_queries.lock_spans(conn, source_id, wanted)
        stored = self.calls_of_spans(tx, source_id, wanted)
        waiting = {}
        for key, (values, created_at) in wanted.items():
            row = stored.get(key)
            if row is None:
                waiting[key] = (values, created_at)
                continue
            missing = {
                name: values[name]
                for name in genai.DETAIL_FIELDS
                if row[name] is None and values.get(name) is not None
            }
            if not missing:
                continue  # a retry, or an event with nothing the span lacked
            self.fill_call(tx, row, missing)
            if missing.get("output_messages"):
                output = output_text(missing["output_messages"])
                llm_queries.fill_prompt_log_output(conn, row["id"], output)
        llm_queries.wait_details(conn, source_id, waiting)

    def calls_of_spans(
        self, tx: WriteTx, source_id: str, keys: Iterable[tuple[str, str]]
    ) -> Mapping[tuple[str, str], Mapping[Any, Any]]:
        """The stored calls of these spans: their ids and the fields a details event fills."""
        return llm_queries.calls_of_spans(tx.conn, source_id, keys)

    def fill_call(self, tx: WriteTx, call: Mapping[Any, Any], values: dict[str, Any]) -> None:
        """Set these fields (that the call lacks) of a call ``calls_of_spans`` found."""
        llm_queries.fill_call(tx.conn, call["id"], values)

    def insert_generations(
        self, tx: WriteTx, source_id: str, pending: Sequence[PendingGeneration]
    ) -> list[StoredGeneration]:
        conn = tx.conn
        if not pending:
            return []
        calls = costed_calls(conn, source_id, pending)
        _insert_generations.execute(
            conn, _insert_generations.tuple_parameters(conn.dialect, calls.rows)
        )
        insert_prompt_logs(conn, calls.log_rows)
        return calls.stored

    def insert_spans(self, tx: WriteTx, source_id: str, pending: Sequence[PendingSpan]) -> None:
        conn = tx.conn
        if pending:
            rows = span_rows(source_id, pending)
            _insert_spans.execute(conn, _insert_spans.tuple_parameters(conn.dialect, rows))

    def find_stored(
        self, tx: WriteTx, source_id: str, ids: Sequence[str]
    ) -> dict[str, dict[str, Any] | LogHarborError]:
        conn = tx.conn
        if not ids:
            return {}
        query = queries.record_select(full=True).where(http_traffic.c.id.in_(sorted(set(ids))))
        return stored_answers(conn.execute(query).mappings(), source_id)

    def stage(
        self, dialect: Dialect, source_id: str, pending: Sequence[PendingExchange]
    ) -> StagedExchanges | None:
        """``insert_exchanges``' work that needs no database, for a writer to do before it takes
        the write lock: the rows and their driver parameters. None when a domain or pathname
        is not cached (finding it takes the database)."""
        cached = self.names.cached_names(source_id, pending)
        if cached is None:
            return None
        return _staged(dialect, source_id, pending, *cached)

    def insert_exchanges(
        self,
        tx: WriteTx,
        source_id: str,
        pending: Sequence[PendingExchange],
        staged: StagedExchanges | None = None,
    ) -> list[StoredExchange]:
        conn = tx.conn
        if not pending:
            return []
        if staged is None:
            names = self.names
            # Resolved in a sorted order, so that two transactions creating the same new
            # domains and pathnames take their locks in the same order and cannot deadlock.
            domains = {
                origin: names.domain(conn, source_id, origin, protocol)
                for origin, protocol in sorted(
                    {(p.record.origin, p.record.protocol) for p in pending}
                )
            }
            pathnames = {
                (origin, value): names.pathname(conn, source_id, domains[origin][0], value)
                for origin, value in sorted(pathnames_of(pending))
            }
            staged = _staged(conn.dialect, source_id, pending, domains, pathnames)
        for bulk_insert, parameters in zip(_EXCHANGE_INSERTS, staged.parameters, strict=True):
            bulk_insert.execute(conn, parameters)
        return staged.stored

    def insert_logs(
        self, tx: WriteTx, source_id: str, pending: Sequence[PendingLog]
    ) -> list[StoredLog]:
        conn = tx.conn
        if not pending:
            return []
        routes = {
            route: self.names.core_pathname(conn, source_id, route)
            for route in sorted({p.line.route for p in pending})
        }
        rows = []
        stored = []
        for item in pending:
            line = item.line
            rows.append(
                (
                    item.id,
                    source_id,
                    routes[line.route],
                    line.status,
                    line.method,
                    line.level,
                    line.elapsed_ms,
                    line.user_id,
                    item.created_at,
                    line.trace_id,
                    line.span_id,
                    exception_json(line.exception),
                    line.message,
                    line.attributes,
                )
            )
            stored.append(StoredLog(item, routes[line.route]))
        _insert_core_logs.execute(conn, _insert_core_logs.tuple_parameters(conn.dialect, rows))
        return stored


@dataclass(slots=True)
class StagedExchanges:
    """Exchanges ready to insert: what they will be stored as, and the driver parameters of
    the requests, responses and http_traffic inserts."""

    stored: list[StoredExchange]
    parameters: tuple[list[Any], list[Any], list[Any]]


def pathnames_of(pending: Sequence[PendingExchange]) -> set[tuple[str, str]]:
    """(origin, value) of every pathname the records need: their own and their routes'."""
    wanted = {(p.record.origin, p.record.pathname) for p in pending}
    wanted.update((p.record.origin, p.record.route) for p in pending if p.record.route)
    return wanted


def _staged(
    dialect: Dialect,
    source_id: str,
    pending: Sequence[PendingExchange],
    domains: dict[str, tuple[str, str, str]],
    pathnames: dict[tuple[str, str], str],
) -> StagedExchanges:
    request_rows: list[tuple[Any, ...]] = []
    response_rows: list[tuple[Any, ...]] = []
    traffic_rows: list[tuple[Any, ...]] = []
    stored: list[StoredExchange] = []
    for item in pending:
        record = item.record
        domain_id, domain, protocol = domains[record.origin]
        pathname_id = pathnames[(record.origin, record.pathname)]
        route_id = pathnames[(record.origin, record.route)] if record.route else None
        request, response = record.request, record.response
        request_rows.append(
            (
                item.request_id,
                source_id,
                None,
                request.headers,
                request.body.text,
                request.body.preview,
                request.body.size,
                request.body.truncated,
                request.query_params,
                item.created_at,
            )
        )
        response_rows.append(
            (
                item.response_id,
                source_id,
                None,
                response.headers,
                response.body.text,
                response.body.preview,
                response.body.size,
                response.body.truncated,
                item.created_at,
            )
        )
        traffic_rows.append(
            (
                item.id,
                source_id,
                domain_id,
                pathname_id,
                record.status,
                record.method,
                record.level,
                record.elapsed_time,
                record.traffic_user_id,
                item.request_id,
                item.response_id,
                item.created_at,
                route_id,
                record.trace_id,
                record.span_id,
                exception_json(record.exception),
            )
        )
        stored.append(
            StoredExchange(
                item, domain_id, domain, protocol, pathname_id, record.pathname, route_id
            )
        )
    return StagedExchanges(
        stored,
        (
            _insert_requests.tuple_parameters(dialect, request_rows),
            _insert_responses.tuple_parameters(dialect, response_rows),
            _insert_traffic.tuple_parameters(dialect, traffic_rows),
        ),
    )


def _attribution(call: Generation, prompts: dict[str, int]) -> tuple[str | None, int | None]:
    """The prompt version a call is filed under: its prompt must be the source owner's, and the
    version one that prompt has (its current one when the sender named none)."""
    if call.prompt_id is None or call.prompt_id not in prompts:
        return None, None
    current = prompts[call.prompt_id]
    version = call.prompt_version if call.prompt_version is not None else current
    if not 1 <= version <= current:
        return None, None
    return call.prompt_id, version


@dataclass(slots=True)
class CostedCalls:
    """A group's LLM calls ready to store: ``generations`` rows (``GENERATION_COLUMNS``), the
    prompt logs made from them, and what each was stored as."""

    rows: list[tuple[Any, ...]]
    log_rows: list[tuple[Any, ...]]
    stored: list[StoredGeneration]


def costed_calls(
    conn: Connection, source_id: str, pending: Sequence[PendingGeneration]
) -> CostedCalls:
    """Each call costed at its owner's prices and attributed to a prompt version of its owner
    (what either store writes of it)."""
    prompts = llm_queries.attributable_prompts(
        conn, source_id, [p.call.prompt_id for p in pending if p.call.prompt_id]
    )
    price_list = prices.effective_prices(llm_queries.own_prices_of_source(conn, source_id))
    # A source that turned content off keeps the call's numbers, never its words.
    keep_content = llm_queries.captures_content(conn, source_id)
    rows: list[tuple[Any, ...]] = []
    log_rows: list[tuple[Any, ...]] = []
    stored: list[StoredGeneration] = []
    log_ids = iter(new_ids(len(pending)))
    for item in pending:
        call = item.call
        prompt_id, version = _attribution(call, prompts)
        model = call.response_model or call.request_model
        price = prices.price_of(model, price_list) or prices.price_of(
            call.request_model, price_list
        )
        cost = prices.cost_of(price, call.input_tokens, call.output_tokens, call.cached_tokens)
        rows.append(
            (
                item.id,
                source_id,
                call.trace_id,
                call.span_id,
                call.parent_span_id,
                call.traffic_record_id,
                call.route,
                call.provider,
                call.operation,
                call.request_model,
                call.response_model,
                call.response_id,
                call.finish_reasons,
                call.parameters,
                call.input_messages if keep_content else None,
                call.output_messages if keep_content else None,
                call.system_instructions if keep_content else None,
                call.output_preview if keep_content else None,
                call.input_tokens,
                call.output_tokens,
                call.cached_tokens,
                cost,
                call.duration_ms,
                call.time_to_first_token_ms,
                call.streamed,
                call.error_type,
                call.error_message,
                prompt_id,
                version,
                item.created_at,
            )
        )
        log_id = next(log_ids)
        if prompt_id is not None and call.error_type is None:
            has_output = keep_content and call.output_messages
            output = output_text(call.output_messages) if has_output else ""
            log_rows.append(
                (
                    log_id,
                    prompt_id,
                    version,
                    output,
                    None,
                    model,
                    None,
                    item.created_at,
                    item.id,
                )
            )
        stored.append(StoredGeneration(item, cost, prompt_id, version))
    return CostedCalls(rows, log_rows, stored)


def insert_prompt_logs(conn: Connection, log_rows: list[tuple[Any, ...]]) -> None:
    if log_rows:
        _insert_prompt_logs.execute(
            conn, _insert_prompt_logs.tuple_parameters(conn.dialect, log_rows)
        )


def span_rows(source_id: str, pending: Sequence[PendingSpan]) -> list[tuple[Any, ...]]:
    """``spans`` rows (``SPAN_COLUMNS``) of a group's spans."""
    return [
        (
            item.id,
            source_id,
            item.span.trace_id,
            item.span.span_id,
            item.span.parent_span_id,
            item.span.name,
            item.span.kind,
            item.span.service,
            item.span.duration_ms,
            item.span.status,
            item.span.status_message,
            item.span.attributes,
            item.created_at,
        )
        for item in pending
    ]
