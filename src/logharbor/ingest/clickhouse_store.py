"""The record store for events on ClickHouse (``LOGHARBOR_EVENTS_URL``).

Traffic records with their payloads, and core logs, become one wide row each, staged on the
write transaction (``WriteTx.stage``) and inserted by the writer as one multi-row insert per
table for the whole group, just before the SQL commit. Names (domains, pathnames, core
pathnames) keep their ids in the SQL database, resolved as the SQL store resolves them.

ClickHouse has no unique constraint, so safe retries are this store's job: a record with a
client id is looked up in ``record_ids`` before it is staged, under a per-source lock of the
SQL transaction (PostgreSQL's advisory lock; SQLite has one writer), so that two hosts storing
the same retry at once cannot both insert it. A known id fails the group's optimistic run, and
the pipeline's careful run answers it with the stored record.

LLM calls and the other spans of traces are rows here too, costed and attributed as the SQL
store does it (``store.costed_calls``); their retries are looked up in ``record_ids`` in every
run, as records' are. What stays in the SQL database: the prompt logs made from calls (they are
scored and annotated there, by the call's id), and a details event's content waiting for its
call's span (``generation_details``, taken and deleted when it arrives). Content that reaches a
call stored before is written by one mutation at commit (``_CallFills``): that order of arrival
is the exception, and a mutation is what ClickHouse has for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, func, select

from logharbor.common.errors import LogHarborError
from logharbor.db import events_schema, tables
from logharbor.db.clickhouse import EventsClient, epoch_ms, identifier, json_row, literal
from logharbor.db.clickhouse_sql import fetch, from_events_row, to_events_row, to_events_value
from logharbor.db.writer import WriteTx
from logharbor.ingest.normalize import exception_json
from logharbor.ingest.records import Payload
from logharbor.ingest.store import (
    GENERATION_COLUMNS,
    SPAN_COLUMNS,
    NameCache,
    PendingExchange,
    PendingGeneration,
    PendingLog,
    PendingSpan,
    SqlRecordStore,
    StoredExchange,
    StoredGeneration,
    StoredLog,
    costed_calls,
    insert_prompt_logs,
    pathnames_of,
    span_rows,
    stored_answers,
)
from logharbor.llm import queries as llm_queries
from logharbor.traffic import clickhouse_queries


class StoredElsewhere(LogHarborError):
    """A client id of the optimistic run is stored already: the careful run answers it."""


class EventsSink:
    """What the writer calls at commit with every row staged for a table."""

    def __init__(self, client: EventsClient) -> None:
        self.client = client

    def write(self, table: str, rows: list[dict[str, Any]]) -> None:
        self.client.insert(table, rows)


class _CallFills:
    """Details that reached calls stored by an earlier commit: one ``ALTER ... UPDATE`` each,
    run by the writer with the group's inserts and waited for, so that the answer means
    stored (18.16 has no ``mutations_sync``)."""

    def __init__(self, client: EventsClient) -> None:
        self.client = client

    def write(self, table: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            assignments = ", ".join(
                f"{identifier(name)} = {literal(value)}" for name, value in row["values"].items()
            )
            events_schema.alter_local_tables(
                self.client,
                table,
                f"UPDATE {assignments} WHERE traffic_source_id = "
                f"{literal(row['traffic_source_id'])} AND id = {literal(row['id'])}",
            )
        self.client.wait_for_mutations()


def _payload_row(prefix: str, payload: Payload, created_at: int) -> dict[str, Any]:
    return {
        prefix + "headers": _json(payload.headers),
        prefix + "body": payload.body.text,
        prefix + "body_preview": payload.body.preview,
        prefix + "body_size": payload.body.size,
        prefix + "body_truncated": int(payload.body.truncated),
        prefix + "created_at": created_at,
    }


def _json(value: Any) -> str | None:
    return None if value is None else json_row(value)


def _existing(conn: Connection, table: Any, ids: set[str]) -> set[str]:
    return set(conn.execute(select(table.c.id).where(table.c.id.in_(sorted(ids)))).scalars())


@dataclass(slots=True)
class _Rows:
    """A group's exchanges as ClickHouse rows, and what they are stored as."""

    rows: list[dict[str, Any]]
    id_rows: list[dict[str, Any]]
    stored: list[StoredExchange]


def _rows(
    source_id: str,
    pending: Sequence[PendingExchange],
    domains: dict[str, tuple[str, str, str]],
    pathnames: dict[tuple[str, str], str],
) -> _Rows:
    built = _Rows([], [], [])
    for item in pending:
        record = item.record
        domain_id, domain, protocol = domains[record.origin]
        pathname_id = pathnames[(record.origin, record.pathname)]
        route_id = pathnames[(record.origin, record.route)] if record.route else None
        created = epoch_ms(item.created_at)
        built.rows.append(
            {
                "id": item.id,
                "traffic_source_id": source_id,
                "domain_id": domain_id,
                "pathname_id": pathname_id,
                "status": record.status,
                "method": record.method,
                "level": record.level,
                "elapsed_time": record.elapsed_time,
                "traffic_user_id": record.traffic_user_id,
                "request_id": item.request_id,
                "response_id": item.response_id,
                "created_at": created,
                "route_pathname_id": route_id,
                "trace_id": record.trace_id,
                "span_id": record.span_id,
                "exception": _json(exception_json(record.exception)),
                "domain": domain,
                "protocol": protocol,
                "pathname": record.pathname,
                "route": record.route,
                **_payload_row("rq_", record.request, created),
                "rq_query_params": _json(record.request.query_params),
                **_payload_row("rs_", record.response, created),
            }
        )
        located = _located(source_id, created)
        built.id_rows.append({"id": item.id, "kind": "http_traffic", **located})
        built.id_rows.append({"id": item.request_id, "kind": "request_id", **located})
        built.id_rows.append({"id": item.response_id, "kind": "response_id", **located})
        if record.trace_id is not None:
            built.id_rows.append({"id": record.trace_id, "kind": "trace_id", **located})
        built.stored.append(
            StoredExchange(
                item, domain_id, domain, protocol, pathname_id, record.pathname, route_id
            )
        )
    return built


def _located(source_id: str, created: int) -> dict[str, Any]:
    return {"traffic_source_id": source_id, "created_at": created}


def _id_rows(kind: str, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``record_ids`` rows of stored calls or spans (``kind``): by id for retries, by trace for
    a trace's reads."""
    found = []
    for row in rows:
        located = _located(row["traffic_source_id"], row["created_at"])
        found.append({"id": row["id"], "kind": kind, **located})
        if row["trace_id"] is not None:
            found.append({"id": row["trace_id"], "kind": "trace_id", **located})
    return found


def _lock_sources(conn: Connection, source_ids: Sequence[str]) -> None:
    if conn.dialect.name == "postgresql":
        for source_id in sorted(set(source_ids)):
            conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(source_id, 0))))


class ClickHouseRecordStore(SqlRecordStore):
    """Traffic records, core logs, LLM calls and spans on ClickHouse; names, prompt logs and
    details events waiting for their calls as the SQL store keeps them, inherited."""

    def __init__(self, client: EventsClient, names: NameCache | None = None) -> None:
        super().__init__(names)
        self.client = client
        self.sink = EventsSink(client)
        self.fills = _CallFills(client)

    def stored_ids(
        self, tx: WriteTx, source_id: str, kind: str, ids: Sequence[str], *, careful: bool
    ) -> set[str]:
        # No primary key refuses a retry here: every run looks, under the source's lock, so
        # that two hosts storing the same span at once store it once (as ``find_stored``).
        if not ids:
            return set()
        _lock_sources(tx.conn, [source_id])
        wanted = set(ids)
        found = {row["id"] for row in tx.staged_rows(self.sink, kind) if row["id"] in wanted}
        table = events_schema.record_ids
        query = select(table.c.id).where(table.c.id.in_(sorted(wanted)), table.c.kind == kind)
        return found | {row["id"] for row in fetch(self.client, query)}

    def insert_generations(
        self, tx: WriteTx, source_id: str, pending: Sequence[PendingGeneration]
    ) -> list[StoredGeneration]:
        if not pending:
            return []
        calls = costed_calls(tx.conn, source_id, pending)
        rows = [
            to_events_row(
                events_schema.generations, dict(zip(GENERATION_COLUMNS, row, strict=True))
            )
            for row in calls.rows
        ]
        tx.stage(self.sink, "generations", rows)
        tx.stage(self.sink, "record_ids", _id_rows("generations", rows))
        insert_prompt_logs(tx.conn, calls.log_rows)
        return calls.stored

    def insert_spans(self, tx: WriteTx, source_id: str, pending: Sequence[PendingSpan]) -> None:
        if not pending:
            return
        rows = [
            to_events_row(events_schema.spans, dict(zip(SPAN_COLUMNS, row, strict=True)))
            for row in span_rows(source_id, pending)
        ]
        tx.stage(self.sink, "spans", rows)
        tx.stage(self.sink, "record_ids", _id_rows("spans", rows))

    def calls_of_spans(
        self, tx: WriteTx, source_id: str, keys: Iterable[tuple[str, str]]
    ) -> Mapping[tuple[str, str], Mapping[Any, Any]]:
        wanted = set(keys)
        if not wanted:
            return {}
        found: dict[tuple[str, str], Mapping[Any, Any]] = {}
        query = llm_queries.calls_of_spans_query(events_schema.generations, source_id, wanted)
        for row in fetch(self.client, query):
            found[(row["trace_id"], row["span_id"])] = row
        # Calls of this transaction, not inserted yet: their rows take the content directly.
        for staged in tx.staged_rows(self.sink, "generations"):
            key = (staged["trace_id"], staged["span_id"])
            if staged["traffic_source_id"] == source_id and key in wanted:
                found[key] = {
                    **from_events_row(events_schema.generations, staged),
                    "staged": staged,
                }
        return found

    def fill_call(self, tx: WriteTx, call: Mapping[Any, Any], values: dict[str, Any]) -> None:
        columns = events_schema.generations.c
        encoded = {name: to_events_value(columns[name], value) for name, value in values.items()}
        staged = call.get("staged")
        if staged is not None:
            staged.update(encoded)
            return
        row = {"id": call["id"], "traffic_source_id": call["traffic_source_id"], "values": encoded}
        tx.stage(self.fills, "generations", [row])

    def stage(
        self, dialect: Dialect, source_id: str, pending: Sequence[PendingExchange]
    ) -> Any:  # _Rows | None: what the protocol's stage/insert_exchanges pass between them
        """The group's rows, built before the write lock when every name is cached (building
        and encoding them is most of a ClickHouse insert's cost in Python); the transaction
        still confirms the names (``_names_of``)."""
        cached = self.names.cached_names(source_id, pending)
        return None if cached is None else _rows(source_id, pending, *cached)

    def find_stored(
        self, tx: WriteTx, source_id: str, ids: Sequence[str]
    ) -> dict[str, dict[str, Any] | LogHarborError]:
        if not ids:
            return {}
        _lock_sources(tx.conn, [source_id])
        rows = [*self._staged_records(tx, ids), *clickhouse_queries.records_by_id(self.client, ids)]
        return stored_answers(rows, source_id)

    def _staged_records(self, tx: WriteTx, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Records of this transaction not inserted yet, read back as ``records_by_id`` reads
        stored ones: a retry in the same group is answered like one in a later group."""
        wanted = set(ids)
        return [
            clickhouse_queries.as_record_row(from_events_row(events_schema.http_traffic, row))
            for row in tx.staged_rows(self.sink, "http_traffic")
            if row["id"] in wanted
        ]

    def insert_exchanges(
        self,
        tx: WriteTx,
        source_id: str,
        pending: Sequence[PendingExchange],
        staged: Any = None,  # what stage() returned
    ) -> list[StoredExchange]:
        if not pending:
            return []
        conn = tx.conn
        client_ids = [p.id for p in pending if p.record.client_id is not None]
        if client_ids:
            _lock_sources(conn, [source_id])
            if self._staged_records(tx, client_ids) or clickhouse_queries.records_by_id(
                self.client, client_ids
            ):
                raise StoredElsewhere("a client id of the group is stored")
        built: _Rows | None = staged
        if built is None or not self._confirmed(conn, built):
            built = _rows(source_id, pending, *self._names_of(conn, source_id, pending))
        tx.stage(self.sink, "http_traffic", built.rows)
        tx.stage(self.sink, "record_ids", built.id_rows)
        return built.stored

    def _confirmed(self, conn: Connection, staged: _Rows) -> bool:
        domain_ids = {item.domain_id for item in staged.stored}
        pathname_ids = {item.pathname_id for item in staged.stored} | {
            item.route_pathname_id for item in staged.stored if item.route_pathname_id
        }
        return (
            _existing(conn, tables.domains, domain_ids) == domain_ids
            and _existing(conn, tables.pathnames, pathname_ids) == pathname_ids
        )

    def _names_of(
        self, conn: Connection, source_id: str, pending: Sequence[PendingExchange]
    ) -> tuple[dict[str, tuple[str, str, str]], dict[tuple[str, str], str]]:
        """The group's domain and pathname ids. No foreign key checks a ClickHouse row, so
        ids from the cache are confirmed in the SQL database (two primary-key reads): one
        deleted meanwhile, by this process or another, sends the source's names to be looked
        up again rather than stored dangling."""
        names = self.names
        wanted = pathnames_of(pending)
        origins = sorted({(p.record.origin, p.record.protocol) for p in pending})
        for attempt in (1, 2):
            domains = {
                origin: names.domain(conn, source_id, origin, protocol)
                for origin, protocol in origins
            }
            pathnames = {
                (origin, value): names.pathname(conn, source_id, domains[origin][0], value)
                for origin, value in sorted(wanted)
            }
            domain_ids = {domain[0] for domain in domains.values()}
            if attempt == 2 or (
                _existing(conn, tables.domains, domain_ids) == domain_ids
                and _existing(conn, tables.pathnames, set(pathnames.values()))
                == set(pathnames.values())
            ):
                break
            self.forget(source_id)
        return domains, pathnames

    def insert_logs(
        self, tx: WriteTx, source_id: str, pending: Sequence[PendingLog]
    ) -> list[StoredLog]:
        if not pending:
            return []
        wanted = sorted({p.line.route for p in pending})
        routes = {route: self.names.core_pathname(tx.conn, source_id, route) for route in wanted}
        if _existing(tx.conn, tables.core_pathnames, set(routes.values())) != set(routes.values()):
            self.forget(source_id)  # as for domains and pathnames (see _names_of)
            routes = {
                route: self.names.core_pathname(tx.conn, source_id, route) for route in wanted
            }
        rows: list[dict[str, Any]] = []
        stored = []
        for item in pending:
            line = item.line
            rows.append(
                {
                    "id": item.id,
                    "traffic_source_id": source_id,
                    "core_pathname_id": routes[line.route],
                    "core_pathname": line.route,
                    "status": line.status,
                    "method": line.method,
                    "level": line.level,
                    "elapsed_time": line.elapsed_ms,
                    "traffic_user_id": line.user_id,
                    "request_id": None,
                    "response_id": None,
                    "created_at": epoch_ms(item.created_at),
                    "trace_id": line.trace_id,
                    "span_id": line.span_id,
                    "exception": _json(exception_json(line.exception)),
                    "message": line.message,
                    "attributes": _json(line.attributes),
                }
            )
            stored.append(StoredLog(item, routes[line.route]))
        tx.stage(self.sink, "core_logs", rows)
        tx.stage(
            self.sink,
            "record_ids",
            [
                {
                    "id": row["trace_id"],
                    "kind": "trace_id",
                    **_located(source_id, row["created_at"]),
                }
                for row in rows
                if row["trace_id"] is not None
            ],
        )
        return stored

    def insert_linked(
        self, tx: WriteTx, kind: str, row: dict[str, Any], names: dict[str, Any]
    ) -> None:
        """The entity API's row, with copies of the request and response it links: a record's
        row carries its payloads. The standalone payload rows stay in the SQL database, where
        ``GET /request/:id`` finds them, and ``record_ids`` notes that they are linked."""
        created = epoch_ms(row["created_at"])
        wide: dict[str, Any] = {**row, "created_at": created}
        for prefix, payload in (("rq_", names.get("request")), ("rs_", names.get("response"))):
            if payload is None:
                continue
            if kind == "http_traffic":
                wide.update(
                    {
                        prefix + "headers": _json(payload["headers"]),
                        prefix + "body": payload["body"],
                        prefix + "body_preview": payload["body_preview"],
                        prefix + "body_size": payload["body_size"],
                        prefix + "body_truncated": int(bool(payload["body_truncated"])),
                        prefix + "created_at": epoch_ms(payload["created_at"]),
                    }
                )
                if prefix == "rq_":
                    wide["rq_query_params"] = _json(payload["query_params"])
        if kind == "http_traffic":
            wide.update(
                domain=names["domain"]["value"],
                protocol=names["domain"]["protocol"],
                pathname=names["pathname"]["value"],
                route=None,
                route_pathname_id=None,
                rq_body_size=wide.get("rq_body_size", 0),
                rs_body_size=wide.get("rs_body_size", 0),
                rq_body_truncated=wide.get("rq_body_truncated", 0),
                rs_body_truncated=wide.get("rs_body_truncated", 0),
            )
        else:
            wide["core_pathname"] = names["core_pathname"]["value"]
        links = [
            {
                "id": wide[column],
                "kind": column,
                "traffic_source_id": row["traffic_source_id"],
                "created_at": created,
            }
            for column in ("request_id", "response_id")
            if wide.get(column) is not None
        ]
        ids = [{"id": row["id"], "kind": kind, **_located(row["traffic_source_id"], created)}]
        tx.stage(self.sink, kind, [wide])
        tx.stage(self.sink, "record_ids", ids + links)

    def payload_linked(self, conn: Connection, column: str, payload_id: str) -> bool:
        return clickhouse_queries.linked(self.client, column, payload_id)
