"""Storing HTTP traffic records: the core under compose, ingest-log and the batch endpoint.

Two steps, so that a batch can validate every item before it touches the database and report
which items failed:

1. ``prepare_record(raw, config)`` (or ``prepare_compose`` for an already-parsed ``ComposeIn``):
   validate and normalize one record as collectors send it — upper- or lower-case enums, headers,
   bodies and query params as JSON or JSON text, null bodies, fractional ``elapsedTime`` — mask
   sensitive keys and cap the bodies. No database. Raises ``BadRequest`` naming the fields.
2. ``store_records(conn, source_id, records)``: inside the caller's transaction, get-or-create
   the domains and pathnames (scoped to the source, race-safe), insert requests, responses and
   traffic rows, and publish the ``TrafficEvent``s. Returns the created records as JSON dicts.
   The caller has checked INGEST access in the same transaction.

The ingest routes do not call ``store_records`` themselves: they hand an ``IngestItem`` to the
group-commit writer's ``run_bulk`` with the app's ``Ingestor``, which checks access for every
item of the group at once and stores all their records per source in one statement per table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from fastapi import Request
from pydantic import ValidationError
from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import IntegrityError

from logharbor.auth.deps import Principal
from logharbor.common.errors import BadRequest, Conflict, LogHarborError
from logharbor.common.ids import new_id, new_ids
from logharbor.common.timestamps import utcnow
from logharbor.db.bulk import BulkInsert
from logharbor.db.tables import http_traffic, requests, responses
from logharbor.traffic import events, normalize, queries
from logharbor.traffic.access import grant_ingest
from logharbor.traffic.normalize import IngestConfig, StoredBody
from logharbor.traffic.schemas import ComposeIn

T = TypeVar("T")

__all__ = [
    "IngestConfig",
    "IngestItem",
    "Ingestor",
    "NameCache",
    "PreparedPayload",
    "PreparedRecord",
    "prepare_compose",
    "prepare_payload",
    "prepare_record",
    "store_records",
    "validation_field_errors",
]


@dataclass(frozen=True, slots=True)
class PreparedPayload:
    """A request or response ready for its table (masked, capped)."""

    headers: Any
    body: StoredBody
    query_params: Any = None


@dataclass(frozen=True, slots=True)
class PreparedRecord:
    """One validated, normalized, masked HTTP exchange; no database work done yet."""

    origin: str  # scheme://host[:port]
    protocol: str  # HTTP | HTTPS
    pathname: str
    status: int
    method: str  # upper case
    level: str  # INFO | WARNING | FATAL
    elapsed_time: float
    traffic_user_id: str | None
    request: PreparedPayload
    response: PreparedPayload
    # The client's own id, which makes retries idempotent; None lets the server pick one.
    record_id: str | None = None
    # The route template the collector matched (/orders/{id}); statistics count it there.
    route: str | None = None


def validation_field_errors(exc: ValidationError) -> dict[str, str]:
    """pydantic errors as Arkyn ``fieldErrors`` (dotted path → first message)."""
    errors: dict[str, str] = {}
    for issue in exc.errors():
        name = ".".join(str(part) for part in issue.get("loc", ())) or "body"
        errors.setdefault(name, str(issue.get("msg", "invalid")).removeprefix("Value error, "))
    return errors


def _collect(errors: dict[str, str], field: str, step: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return step(*args, **kwargs)
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
) -> PreparedPayload:
    """Mask and cap one request/response; raises BadRequest naming ``fields`` entries."""
    errors: dict[str, str] = {}
    prepared_headers = _collect(errors, fields[0], normalize.prepare_document, headers, config)
    prepared_body = _collect(errors, fields[1], normalize.prepare_body, body, config)
    prepared_query = _collect(errors, fields[2], normalize.prepare_document, query_params, config)
    if errors:
        raise BadRequest("Invalid input data", field_errors=errors)
    return PreparedPayload(prepared_headers, prepared_body, prepared_query)


def prepare_compose(item: ComposeIn, config: IngestConfig) -> PreparedRecord:
    """Normalize a parsed compose body; raises BadRequest with every bad field named."""
    errors: dict[str, str] = {}
    domain = _collect(
        errors, "domainUrl", normalize.normalize_domain, item.domainUrl, item.protocol
    )
    pathname = _collect(errors, "pathnameUrl", normalize.normalize_pathname, item.pathnameUrl)
    route = None
    if item.routeTemplate is not None:
        route = _collect(errors, "routeTemplate", normalize.normalize_route, item.routeTemplate)
    elif config.template_pathnames and pathname is not None:
        templated = normalize.template_pathname(pathname)
        route = templated if templated != pathname else None
    request = response = None
    try:
        request = prepare_payload(
            item.requestHeaders,
            _null_text(item.requestBody),
            config,
            query_params=item.queryParams,
            fields=("requestHeaders", "requestBody", "queryParams"),
        )
    except BadRequest as exc:
        errors.update(exc.field_errors)
    try:
        response = prepare_payload(
            item.responseHeaders,
            _null_text(item.responseBody),
            config,
            fields=("responseHeaders", "responseBody", "responseBody"),
        )
    except BadRequest as exc:
        errors.update(exc.field_errors)
    if errors or domain is None or request is None or response is None:
        raise BadRequest("Invalid input data", field_errors=errors)
    origin, protocol = domain
    return PreparedRecord(
        origin=origin,
        protocol=protocol,
        pathname=pathname,
        status=item.status,
        method=item.method,
        level=normalize.level_for(item.status),
        elapsed_time=float(item.elapsedTime),
        traffic_user_id=item.trafficUserId,
        request=request,
        response=response,
        record_id=item.id.lower() if item.id else None,
        route=route,
    )


def prepare_record(raw: Any, config: IngestConfig) -> PreparedRecord:
    """Validate one raw JSON record (a batch item) as compose does; raises BadRequest."""
    try:
        item = ComposeIn.model_validate(raw)
    except ValidationError as exc:
        errors = validation_field_errors(exc)
        # The payloads are checked after the schema (prepare_compose); name their faults too.
        for field, allow_nul in _PAYLOAD_FIELDS.items():
            if isinstance(raw, dict) and field not in errors:
                _collect(errors, field, normalize.check_json, raw.get(field), allow_nul=allow_nul)
        raise BadRequest("Invalid input data", field_errors=errors) from None
    return prepare_compose(item, config)


# ComposeIn's payload fields, and whether NUL characters may be stored in them (bodies only).
_PAYLOAD_FIELDS = {
    "requestHeaders": False,
    "requestBody": True,
    "queryParams": False,
    "responseHeaders": False,
    "responseBody": True,
}


def payload_row(
    payload: PreparedPayload,
    *,
    source_id: str | None,
    owner_user_id: str | None,
    created_at: datetime,
    with_query_params: bool,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": new_id(),
        "traffic_source_id": source_id,
        "owner_user_id": owner_user_id,
        "headers": payload.headers,
        "body": payload.body.text,
        "body_preview": payload.body.preview,
        "body_size": payload.body.size,
        "body_truncated": payload.body.truncated,
        "created_at": created_at,
    }
    if with_query_params:
        row["query_params"] = payload.query_params
    return row


# In the tables' own column order, so that SQLite's statements bind the row tuples as built.
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
_REQUEST_COLUMNS = (*_PAYLOAD_COLUMNS, "query_params", "created_at")
_RESPONSE_COLUMNS = (*_PAYLOAD_COLUMNS, "created_at")
_insert_requests = BulkInsert(requests, _REQUEST_COLUMNS)
_insert_responses = BulkInsert(responses, _RESPONSE_COLUMNS)
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
)
_insert_traffic = BulkInsert(http_traffic, TRAFFIC_COLUMNS)
_INSERTS = (_insert_requests, _insert_responses, _insert_traffic)


class NameCache:
    """Domain and pathname ids per traffic source, so the hot path does not query for them.

    Only a hint, never the authority: an id cached from a transaction that later rolled back,
    or of a domain deleted since, makes the traffic insert fail its foreign key; the
    ``Ingestor`` then forgets the source's names and the writer runs the items again.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        # (source_id, origin) -> (domain_id, value, protocol)
        self._domains: dict[tuple[str, str], tuple[str, str, str]] = {}
        # (source_id, domain_id, pathname) -> (pathname_id, value)
        self._pathnames: dict[tuple[str, str, str], tuple[str, str]] = {}
        self.hits = 0
        self.misses = 0

    def cached_domain(self, source_id: str, origin: str) -> tuple[str, str, str] | None:
        return self._domains.get((source_id, origin))

    def cached_pathname(self, source_id: str, domain_id: str, path: str) -> tuple[str, str] | None:
        return self._pathnames.get((source_id, domain_id, path))

    def domain(
        self, conn: Connection, source_id: str, origin: str, protocol: str
    ) -> tuple[str, str, str]:
        key = (source_id, origin)
        found = self._domains.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        row = queries.get_or_create_domain(conn, source_id, origin, protocol)
        value = (row["id"], row["value"], row["protocol"])
        self._put(self._domains, key, value)
        return value

    def pathname(
        self, conn: Connection, source_id: str, domain_id: str, path: str
    ) -> tuple[str, str]:
        key = (source_id, domain_id, path)
        found = self._pathnames.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        row = queries.get_or_create_pathname(conn, source_id, domain_id, path)
        value = (row["id"], row["value"])
        self._put(self._pathnames, key, value)
        return value

    def _put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        with self._lock:
            if len(table) >= self.max_entries:
                table.clear()  # crude but bounded; the next requests refill what is hot
            table[key] = value

    def forget(self, source_id: str) -> None:
        # Both tables are keyed by tuples that start with the source id.
        tables: tuple[dict[Any, Any], ...] = (self._domains, self._pathnames)
        with self._lock:
            for table in tables:
                for key in [k for k in table if k[0] == source_id]:
                    del table[key]


def store_records(
    conn: Connection,
    source_id: str,
    records: Sequence[PreparedRecord],
    names: NameCache | None = None,
    *,
    detail: bool = True,
) -> list[Any]:
    """Store ``records`` under ``source_id`` in the caller's transaction; all rows or none.

    Returns one dict per record in the shape of ``schemas.RecordDetailOut`` (full request and
    response included), in the order given; with ``detail=False`` only ``{"id": ...}`` (the
    batch answer needs no more, and building the detail costs as much as validating). A record
    whose client id belongs to another source is not stored: its place holds the Conflict.
    The caller has already checked INGEST access to ``source_id``. Without ``names`` every
    domain and pathname is looked up (get-or-create); with a ``NameCache`` a warm source needs
    no lookup at all (a stale cached id fails a foreign key: forget its names and run again).
    """
    if not records:
        return []
    names = names or NameCache()
    stored = _already_stored(conn, source_id, records)
    # Only the records to insert get names: a refused one (its id is another source's) must not
    # leave a new domain or pathname behind in this source.
    fresh = [r for r in records if r.record_id is None or r.record_id not in stored]
    # Resolve names in a sorted order, so that two transactions creating the same new domains
    # and pathnames take their locks in the same order and cannot deadlock each other.
    domain_by_origin = {
        origin: names.domain(conn, source_id, origin, protocol)
        for origin, protocol in sorted({(r.origin, r.protocol) for r in fresh})
    }
    pathname_by_key = {
        (origin, value): names.pathname(conn, source_id, domain_by_origin[origin][0], value)
        for origin, value in sorted(_pathnames_of(fresh))
    }
    rows = _rows(source_id, records, domain_by_origin, pathname_by_key, detail, stored)
    staged = _staged(conn.dialect, source_id, records, rows)
    return apply_staged(conn, staged, already_checked=True)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class StagedRecords:
    """``store_records``' work that needs no database: ids, driver parameters, answers, events."""

    source_id: str
    records: Sequence[PreparedRecord]
    # Driver parameters for the requests, responses and http_traffic inserts.
    parameters: tuple[list[Any], ...]
    created: list[dict[str, Any]]
    events: list[events.TrafficEvent]


def stage_records(
    dialect: Dialect,
    source_id: str,
    records: Sequence[PreparedRecord],
    names: NameCache,
    detail: bool,
) -> StagedRecords | None:
    """What ``store_records`` would insert, prepared before the transaction (and so outside the
    write lock); None when a domain or pathname is not in the cache (that takes the database)."""
    domain_by_origin: dict[str, tuple[str, str, str]] = {}
    pathname_by_key: dict[tuple[str, str], tuple[str, str]] = {}
    for record in records:
        domain = domain_by_origin.get(record.origin) or names.cached_domain(
            source_id, record.origin
        )
        if domain is None:
            return None
        domain_by_origin[record.origin] = domain
    for origin, value in _pathnames_of(records):
        pathname = names.cached_pathname(source_id, domain_by_origin[origin][0], value)
        if pathname is None:
            return None
        pathname_by_key[(origin, value)] = pathname
    rows = _rows(source_id, records, domain_by_origin, pathname_by_key, detail, {})
    return _staged(dialect, source_id, records, rows)


def _pathnames_of(records: Sequence[PreparedRecord]) -> set[tuple[str, str]]:
    """(origin, value) of every pathname the records need: their own and their routes'."""
    found = {(record.origin, record.pathname) for record in records}
    found.update((record.origin, record.route) for record in records if record.route)
    return found


def _staged(
    dialect: Dialect, source_id: str, records: Sequence[PreparedRecord], rows: Any
) -> StagedRecords:
    tables, created, published = rows[:3], rows[3], rows[4]
    parameters = tuple(
        insert.tuple_parameters(dialect, table_rows) for insert, table_rows in tables
    )
    return StagedRecords(source_id, records, parameters, created, published)


def apply_staged(
    conn: Connection, staged: StagedRecords, *, already_checked: bool = False
) -> list[dict[str, Any]] | None:
    """Insert what ``stage_records`` prepared; None when some record's client id is already
    stored (a retry: ``store_records`` then answers with the stored record instead)."""
    if not already_checked and _already_stored(conn, staged.source_id, staged.records):
        return None
    for insert, params in zip(_INSERTS, staged.parameters, strict=True):
        insert.execute(conn, params)
    events.publish(conn, staged.events)
    return staged.created


def _rows(
    source_id: str,
    records: Sequence[PreparedRecord],
    domain_by_origin: dict[str, tuple[str, str, str]],
    pathname_by_key: dict[tuple[str, str], tuple[str, str]],
    detail: bool,
    stored: dict[str, Any],
) -> tuple[Any, Any, Any, list[dict[str, Any]], list[events.TrafficEvent]]:
    """Row tuples for the three tables (paired with their inserts), the answers and the events;
    records whose client ids are in ``stored`` are answered from there and not inserted."""
    now = utcnow()
    request_rows: list[tuple[Any, ...]] = []
    response_rows: list[tuple[Any, ...]] = []
    traffic_rows: list[tuple[Any, ...]] = []
    created: list[dict[str, Any]] = []
    published: list[events.TrafficEvent] = []
    fresh_ids = iter(new_ids(3 * len(records)))
    for record in records:
        if record.record_id is not None and record.record_id in stored:
            created.append(stored[record.record_id])
            continue
        domain_id, domain, protocol = domain_by_origin[record.origin]
        pathname_id, pathname = pathname_by_key[(record.origin, record.pathname)]
        route_id = pathname_by_key[(record.origin, record.route)][0] if record.route else None
        request, response = record.request, record.response
        request_id, response_id, record_id = next(fresh_ids), next(fresh_ids), next(fresh_ids)
        record_id = record.record_id or record_id
        request_row = (
            request_id,
            source_id,
            None,
            request.headers,
            request.body.text,
            request.body.preview,
            request.body.size,
            request.body.truncated,
            request.query_params,
            now,
        )
        response_row = (
            response_id,
            source_id,
            None,
            response.headers,
            response.body.text,
            response.body.preview,
            response.body.size,
            response.body.truncated,
            now,
        )
        traffic_row = (
            record_id,
            source_id,
            domain_id,
            pathname_id,
            record.status,
            record.method,
            record.level,
            record.elapsed_time,
            record.traffic_user_id,
            request_id,
            response_id,
            now,
            route_id,
        )
        request_rows.append(request_row)
        response_rows.append(response_row)
        traffic_rows.append(traffic_row)
        if detail:
            record_json = queries.record_json(
                dict(zip(TRAFFIC_COLUMNS, traffic_row, strict=True)),
                domain=domain,
                protocol=protocol,
                pathname=pathname,
                request=queries.payload_json(
                    dict(zip(_REQUEST_COLUMNS, request_row, strict=True)),
                    full=True,
                    query_params=True,
                ),
                response=queries.payload_json(
                    dict(zip(_RESPONSE_COLUMNS, response_row, strict=True)),
                    full=True,
                    query_params=False,
                ),
                route=record.route,
            )
        else:
            record_json = {"id": record_id}
        created.append(record_json)
        if record.record_id is not None:
            # The same id twice in one batch is still one record.
            stored[record.record_id] = record_json
        published.append(
            traffic_event(
                traffic_row,
                domain=domain,
                pathname=pathname,
                response_preview=response.body.preview,
            )
        )
    return (
        (_insert_requests, request_rows),
        (_insert_responses, response_rows),
        (_insert_traffic, traffic_rows),
        created,
        published,
    )


def _already_stored(
    conn: Connection, source_id: str, records: Sequence[PreparedRecord]
) -> dict[str, Any]:
    """Records of this batch whose client ids are already stored, by id: the stored record's
    JSON (a retry), or the Conflict to answer when the id is another source's."""
    given = {record.record_id for record in records if record.record_id is not None}
    if not given:
        return {}
    query = queries.record_select(full=True).where(http_traffic.c.id.in_(sorted(given)))
    found: dict[str, Any] = {}
    for row in conn.execute(query).mappings():
        if row["traffic_source_id"] != source_id:
            # That record alone is refused: the others of a batch are still stored.
            found[row["id"]] = Conflict(
                "A record with this id belongs to another traffic source",
                field_errors={"id": "Already used by another record"},
            )
        else:
            found[row["id"]] = queries.joined_record_json(row, full=True)
    return found


@dataclass(frozen=True, slots=True)
class IngestItem:
    """One request's records for the writer: who sends them, to which source, in what answer."""

    principal: Principal
    source_id: str
    records: Sequence[PreparedRecord]
    # The full stored record in the answer (compose), or its id alone (batch).
    detail: bool = True


class Ingestor:
    """The group-commit writer's bulk runner for traffic records (see ``db.writer.run_bulk``).

    One call gets every ``IngestItem`` of a group commit: access for all of them in one query
    (``access.grant_ingest``), then per source one insert per table for the records of all the
    items that may write there. An item refused access gets its error; the others are stored.
    """

    def __init__(self, names: NameCache | None = None) -> None:
        self.names = names or NameCache()

    def stage(self, dialect: Dialect, items: list[IngestItem]) -> dict[Target, Any]:
        """Everything but the database work, done by the writer before it takes the lock."""
        staged: dict[Target, Any] = {}
        for target, indexes in _targets(items, range(len(items))).items():
            records = [record for index in indexes for record in items[index].records]
            staged[target] = (
                indexes,
                stage_records(dialect, target[0], records, self.names, target[1]),
            )
        return staged

    def __call__(
        self, conn: Connection, items: list[IngestItem], staged: dict[Target, Any] | None = None
    ) -> list[Any]:
        verdicts = grant_ingest(conn, [(item.principal, item.source_id) for item in items])
        outcomes: list[Any] = list(verdicts)
        allowed = [index for index, verdict in enumerate(verdicts) if verdict is None]
        # Sorted, so that two processes' groups take the sources' name locks in the same order.
        for target, indexes in sorted(_targets(items, allowed).items()):
            records = [record for index in indexes for record in items[index].records]
            created = None
            ready = (staged or {}).get(target)
            if ready is not None and ready[0] == indexes and ready[1] is not None:
                created = self._guarded(target[0], apply_staged, conn, ready[1])
            if created is None:
                created = self._guarded(
                    target[0],
                    store_records,
                    conn,
                    target[0],
                    records,
                    self.names,
                    detail=target[1],
                )
            start = 0
            for index in indexes:
                end = start + len(items[index].records)
                outcomes[index] = created[start:end]
                start = end
        return outcomes

    def _guarded(self, source_id: str, store: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return store(*args, **kwargs)
        except IntegrityError:
            # A stale cached name id fails a foreign key. The writer runs the items again,
            # each in a savepoint (see ``GroupCommitWriter._run_bulk``): with fresh lookups.
            self.names.forget(source_id)
            raise


Target = tuple[str, bool]  # (source id, detail)


def _targets(items: list[IngestItem], indexes: Iterable[int]) -> dict[Target, list[int]]:
    targets: dict[Target, list[int]] = {}
    for index in indexes:
        item = items[index]
        targets.setdefault((item.source_id, item.detail), []).append(index)
    return targets


async def ingest(request: Request, item: IngestItem) -> list[Any]:
    """Store ``item`` through the group-commit writer; once committed, per record its JSON or
    the LogHarborError that refused it alone (see ``store_records``)."""
    # One Ingestor per app (app.state): the writer groups bulk items by their runner.
    outcome = await request.app.state.writer.run_bulk(request.app.state.ingestor, item)
    if isinstance(outcome, LogHarborError):
        raise outcome
    return outcome  # type: ignore[no-any-return]


def traffic_event(
    row: Sequence[Any], *, domain: str, pathname: str, response_preview: str | None
) -> events.TrafficEvent:
    """The event of a stored ``http_traffic`` row, given as its values in ``TRAFFIC_COLUMNS``
    order (a tuple: the batch path builds no dict per record)."""
    (
        record_id,
        source_id,
        domain_id,
        pathname_id,
        status,
        method,
        level,
        elapsed_time,
        traffic_user_id,
        _request_id,
        _response_id,
        created_at,
        route_pathname_id,
    ) = row
    return events.TrafficEvent(
        kind="traffic",
        id=record_id,
        traffic_source_id=source_id,
        domain_id=domain_id,
        domain=domain,
        pathname_id=pathname_id,
        pathname=pathname,
        method=method,
        status=status,
        level=level,
        elapsed_time=elapsed_time,
        traffic_user_id=traffic_user_id,
        created_at=created_at,
        response_preview=response_preview,
        route_pathname_id=route_pathname_id,
    )
