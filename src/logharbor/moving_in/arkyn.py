"""``logharbor import arkyn --from postgresql://...``: an Arkyn Logs database.

The source is the Prisma schema of reference/arkyn-logs-original.md §4, with or without the
tables its migration history left behind (``User``, whose emails then help map owners;
``Exception`` and ``ExceptionOccurrence``, never written by Arkyn: exceptions are rebuilt from
the records instead). Each table is read in pages by id (keyset), a page per transaction:
sources, shares, domains, pathnames, core pathnames, then each traffic record or core log with
its request and response, then webhooks.

What Arkyn let in and LogHarbor keeps differently:

- domains and pathnames duplicated by Arkyn's non-atomic, unscoped get-or-create (trailing
  slashes, races, another tenant's rows) are merged into one per source, as LogHarbor's unique
  constraints want; a record pointing at another tenant's domain gets one in its own source;
- headers, query parameters and body previews stay the JSON text Arkyn stored, masked as on
  every ingest path (``ingest.normalize.prepare_payload``); the full bodies Arkyn never kept
  (its ``bodyUrl`` was a stub) stay lost, and a 200-character preview is flagged truncated;
- webhooks posted to a Discord channel id through Arkyn's bot: LogHarbor needs the channel's
  webhook URL, so those are refused (listed in the summary); URL values come across, with
  status filters that keep Arkyn's exact-level matching;
- requests and responses that no record or core log links (left by Arkyn's non-transactional
  compose) have no owner to give them: counted as refused.

Rollups and exception groups are written for every imported record in its page's transaction,
through the same functions ingest uses; no webhook notification is queued for old history.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Table, create_engine, insert, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError

from logharbor.alerts import hooks as alert_hooks
from logharbor.alerts.services import guess_type
from logharbor.common.errors import BadRequest
from logharbor.db.engine import Database, normalize_url
from logharbor.db.tables import (
    core_logs,
    core_pathnames,
    domains,
    http_traffic,
    pathnames,
    requests,
    responses,
    traffic_source_shares,
    traffic_sources,
    webhooks,
)
from logharbor.ingest.events import TrafficEvent
from logharbor.ingest.normalize import prepare_payload
from logharbor.ingest.records import Payload
from logharbor.moving_in.common import (
    PAGE_SIZE,
    Advance,
    ImportRefused,
    Owners,
    Summary,
    fresh_rows,
    stable_id,
    timestamp,
)
from logharbor.stats import rollups
from logharbor.traffic.normalize import (
    LEVELS,
    METHODS,
    IngestConfig,
    level_for,
    normalize_domain,
    normalize_pathname,
)

TABLES = (
    "TrafficSource",
    "TrafficSourceShare",
    "Domain",
    "Pathname",
    "CorePathname",
    "Request",
    "Response",
    "HttpTraffic",
    "CoreLog",
    "Webhook",
)
# Arkyn's body preview: the first 200 characters of the body; one that long was probably cut.
ARKYN_PREVIEW_CHARS = 200
# Arkyn matched a webhook's level exactly; LogHarbor's level is a threshold, so a status range
# keeps each webhook to the records Arkyn sent it.
_WEBHOOK_STATUS = {"INFO": (None, 399), "WARNING": (400, 499), "FATAL": (500, None)}


def connect(url: str) -> Engine:
    """The Arkyn database, checked to hold Arkyn's tables."""
    try:
        engine = create_engine(normalize_url(url))
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
    except (SQLAlchemyError, ValueError) as exc:
        raise ImportRefused(f"cannot read the Arkyn database: {str(exc).splitlines()[0]}") from None
    missing = [name for name in TABLES if name not in present]
    if missing:
        engine.dispose()
        raise ImportRefused(f"not an Arkyn Logs database: no table {', '.join(missing)}")
    return engine


def count(engine: Engine) -> int:
    """Rows the import will go through (the progress bar's total)."""
    with engine.connect() as conn:
        return sum(
            int(conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())
            for name in TABLES
            if name not in ("Request", "Response")
        )


def _pages(source: Engine, sql: str, page_size: int, alias: str) -> Iterator[list[Any]]:
    """Rows of ``sql`` (which has ``{after}`` for the keyset condition) a page at a time."""
    after = ""
    while True:
        statement = text(
            sql.format(after=f"{alias}.id > :after ORDER BY {alias}.id LIMIT {int(page_size)}")
        )
        with source.connect() as conn:
            page = list(conn.execute(statement, {"after": after}).mappings())
        if not page:
            return
        yield page
        after = page[-1]["id"]


@dataclass
class _Run:
    db: Database
    source: Engine
    owners: Owners
    config: IngestConfig
    advance: Advance
    page_size: int
    cooldown_seconds: int
    summary: Summary = field(default_factory=lambda: Summary("Arkyn Logs database"))
    has_users: bool = False


def import_database(
    db: Database,
    source: Engine,
    owners: Owners,
    config: IngestConfig,
    *,
    advance: Advance = lambda n: None,
    page_size: int = PAGE_SIZE,
    webhook_cooldown_seconds: int = 60,
) -> Summary:
    run = _Run(db, source, owners, config, advance, page_size, webhook_cooldown_seconds)
    with source.connect() as conn:
        run.has_users = "User" in inspect(conn).get_table_names()
    run.summary.source = f"Arkyn Logs database {source.url.render_as_string(hide_password=True)}"
    _import_sources(run)
    _import_shares(run)
    _import_domains(run)
    _import_pathnames(run)
    _import_core_pathnames(run)
    _import_traffic(run)
    _import_core_logs(run)
    _import_webhooks(run)
    _count_orphans(run)
    return run.summary


# --- owners and sources ------------------------------------------------------------------------


def _known_users(run: _Run, user_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Emails from the ``User`` table that Arkyn's migration history left, where it exists."""
    if not run.has_users or not user_ids:
        return {}
    with run.source.connect() as conn:
        rows = conn.execute(
            text('SELECT id, email, name FROM "User" WHERE id = ANY(:ids)'), {"ids": list(user_ids)}
        )
        return {row.id: (str(row.email).lower(), str(row.name or "")) for row in rows}


def _resolve(run: _Run, user_ids: Sequence[str]) -> tuple[dict[str, str | None], dict[str, Any]]:
    known = _known_users(run, user_ids)
    return run.owners.resolve(run.db, user_ids, run.summary, known), known


def _import_sources(run: _Run) -> None:
    tally = run.summary.tally("traffic sources")
    sql = (
        'SELECT s.id, s.name, s."trafficDomain", s."userId", s."createdAt", s."updatedAt" '
        'FROM "TrafficSource" s WHERE {after}'
    )
    for page in _pages(run.source, sql, run.page_size, "s"):
        resolved, known = _resolve(run, [row["userId"] for row in page])
        rows = []
        for row in page:
            owner = resolved.get(row["userId"])
            if owner is None:
                email = known.get(row["userId"], (None, ""))[0]
                tally.refuse(row["id"], run.owners.why_unmapped(row["userId"], email))
                continue
            created = timestamp(row["createdAt"])
            rows.append(
                {
                    "id": row["id"],
                    "user_id": owner,
                    "name": str(row["name"])[:200],
                    "traffic_domain": str(row["trafficDomain"])[:2048],
                    "retention_days": None,
                    "created_at": created,
                    "updated_at": max(timestamp(row["updatedAt"]), created),
                }
            )
        _insert_fresh(run, traffic_sources, rows, tally)
        run.advance(len(page))


def _insert_fresh(run: _Run, table: Table, rows: list[dict[str, Any]], tally: Any) -> None:
    with run.db.write() as conn:
        new = fresh_rows(conn, table, rows)
        if new:
            conn.execute(insert(table), new)
    tally.imported += len(new)
    tally.skipped += len(rows) - len(new)


def _imported_sources(conn: Connection, source_ids: Sequence[str]) -> dict[str, str]:
    """Source id -> owner id, for the sources of ``source_ids`` that were imported."""
    query = select(traffic_sources.c.id, traffic_sources.c.user_id).where(
        traffic_sources.c.id.in_(set(source_ids))
    )
    return {row.id: row.user_id for row in conn.execute(query)}


def _import_shares(run: _Run) -> None:
    tally = run.summary.tally("shares")
    sql = (
        'SELECT h.id, h."sharedWithId", h."trafficSourceId", h."createdAt" '
        'FROM "TrafficSourceShare" h WHERE {after}'
    )
    for page in _pages(run.source, sql, run.page_size, "h"):
        resolved, known = _resolve(run, [row["sharedWithId"] for row in page])
        with run.db.write() as conn:
            sources = _imported_sources(conn, [row["trafficSourceId"] for row in page])
            rows: list[dict[str, Any]] = []
            for row in page:
                user = resolved.get(row["sharedWithId"])
                if row["trafficSourceId"] not in sources:
                    tally.refuse(row["id"], "trafficSourceId: its traffic source was not imported")
                elif user is None:
                    email = known.get(row["sharedWithId"], (None, ""))[0]
                    tally.refuse(row["id"], run.owners.why_unmapped(row["sharedWithId"], email))
                elif user == sources[row["trafficSourceId"]]:
                    tally.refuse(row["id"], "sharedWithId: maps to the source's own owner")
                else:
                    rows.append(
                        {
                            "id": row["id"],
                            "traffic_source_id": row["trafficSourceId"],
                            "user_id": user,
                            "permission": "READ_ONLY",
                            "created_at": timestamp(row["createdAt"]),
                        }
                    )
            new = fresh_rows(conn, traffic_source_shares, rows)
            taken = {
                (r.traffic_source_id, r.user_id)
                for r in conn.execute(
                    select(
                        traffic_source_shares.c.traffic_source_id, traffic_source_shares.c.user_id
                    ).where(traffic_source_shares.c.traffic_source_id.in_(set(sources)))
                )
            }
            insertable = []
            for row in new:
                key = (row["traffic_source_id"], row["user_id"])
                if key not in taken:
                    taken.add(key)
                    insertable.append(row)
            if insertable:
                conn.execute(insert(traffic_source_shares), insertable)
        tally.imported += len(insertable)
        tally.skipped += len(rows) - len(insertable)
        run.advance(len(page))


# --- domains and pathnames ---------------------------------------------------------------------


def _get_or_create(
    conn: Connection,
    table: Table,
    key: dict[str, str],
    extra: dict[str, Any],
    preferred_id: str,
    created_at: datetime,
) -> tuple[str, bool]:
    """The row with ``key`` (a unique constraint), else a new one under Arkyn's id when that id
    is free (a merged duplicate's or another tenant's is not: then one derived from the key)."""
    found = conn.execute(
        select(table.c.id).where(*(table.c[name] == value for name, value in key.items()))
    ).scalar()
    if found is not None:
        return str(found), False
    row_id = preferred_id
    if conn.execute(select(table.c.id).where(table.c.id == row_id)).scalar() is not None:
        row_id = stable_id(created_at, "arkyn", table.name, *key.values())
    conn.execute(insert(table).values(id=row_id, **key, **extra, created_at=created_at))
    return row_id, True


def _domain(
    conn: Connection, source_id: str, value: Any, protocol: Any, arkyn_id: str, created: datetime
) -> tuple[str, str, bool]:
    """(LogHarbor domain id, origin, created?); ValueError for a value that is no origin."""
    origin, normalized_protocol = normalize_domain(
        str(value), str(protocol).upper() if protocol else None
    )
    key = {"traffic_source_id": source_id, "value": origin}
    domain_id, made = _get_or_create(
        conn, domains, key, {"protocol": normalized_protocol}, arkyn_id, created
    )
    return domain_id, origin, made


def _pathname(
    conn: Connection, source_id: str, domain_id: str, value: Any, arkyn_id: str, created: datetime
) -> tuple[str, str, bool]:
    pathname = normalize_pathname(str(value))
    key = {"domain_id": domain_id, "value": pathname}
    pathname_id, made = _get_or_create(
        conn, pathnames, key, {"traffic_source_id": source_id}, arkyn_id, created
    )
    return pathname_id, pathname, made


def _import_named(
    run: _Run, kind_name: str, sql: str, alias: str, make: Callable[[Connection, Any], bool]
) -> None:
    """Domains, pathnames or core pathnames: ``make`` gets or creates one (True: created);
    one that exists was imported by an earlier run, or is a duplicate Arkyn let in, merged."""
    tally = run.summary.tally(kind_name)
    for page in _pages(run.source, sql, run.page_size, alias):
        with run.db.write() as conn:
            sources = _imported_sources(conn, [row["trafficSourceId"] for row in page])
            for row in page:
                if row["trafficSourceId"] not in sources:
                    tally.refuse(row["id"], "trafficSourceId: its traffic source was not imported")
                    continue
                try:
                    made = make(conn, row)
                except ValueError as exc:
                    tally.refuse(row["id"], f"{exc} ({str(row['value'])[:80]!r})")
                    continue
                if made:
                    tally.imported += 1
                else:
                    tally.skipped += 1
        run.advance(len(page))


def _import_domains(run: _Run) -> None:
    def make(conn: Connection, row: Any) -> bool:
        created = timestamp(row["createdAt"])
        source_id = row["trafficSourceId"]
        try:
            return _domain(conn, source_id, row["value"], row["protocol"], row["id"], created)[2]
        except ValueError as exc:
            raise ValueError(f"value: {exc}") from None

    sql = (
        'SELECT d.id, d.value, d.protocol::text AS protocol, d."trafficSourceId", d."createdAt" '
        'FROM "Domain" d WHERE {after}'
    )
    _import_named(run, "domains", sql, "d", make)


def _import_pathnames(run: _Run) -> None:
    def make(conn: Connection, row: Any) -> bool:
        created = timestamp(row["createdAt"])
        source_id = row["trafficSourceId"]
        try:
            domain_id = _domain(
                conn, source_id, row["domain"], row["protocol"], row["domain_id"], created
            )[0]
        except ValueError as exc:
            raise ValueError(f"domain: {exc}") from None
        try:
            return _pathname(conn, source_id, domain_id, row["value"], row["id"], created)[2]
        except ValueError as exc:
            raise ValueError(f"value: {exc}") from None

    sql = (
        'SELECT p.id, p.value, p."trafficSourceId", p."createdAt", d.id AS domain_id, '
        "d.value AS domain, d.protocol::text AS protocol "
        'FROM "Pathname" p JOIN "Domain" d ON d.id = p."domainId" WHERE {after}'
    )
    _import_named(run, "pathnames", sql, "p", make)


def _core_pathname(
    conn: Connection, source_id: str, value: Any, arkyn_id: str, created: datetime
) -> tuple[str, str, bool]:
    route = str(value).strip()
    if not route:
        raise ValueError("Value is required")
    if not route.startswith("/"):
        route = "/" + route
    route = normalize_pathname(route)
    key = {"traffic_source_id": source_id, "value": route}
    core_id, made = _get_or_create(conn, core_pathnames, key, {}, arkyn_id, created)
    return core_id, route, made


def _import_core_pathnames(run: _Run) -> None:
    def make(conn: Connection, row: Any) -> bool:
        created = timestamp(row["createdAt"])
        try:
            return _core_pathname(conn, row["trafficSourceId"], row["value"], row["id"], created)[2]
        except ValueError as exc:
            raise ValueError(f"value: {exc}") from None

    sql = (
        'SELECT c.id, c.value, c."trafficSourceId", c."createdAt" '
        'FROM "CorePathname" c WHERE {after}'
    )
    _import_named(run, "core pathnames", sql, "c", make)


# --- records -----------------------------------------------------------------------------------

_PAYLOADS = (
    ', rq.id AS rq_id, rq.headers AS rq_headers, rq."bodyPreview" AS rq_body, '
    'rq."queryParams" AS rq_query, rq."createdAt" AS rq_created, '
    'rs.id AS rs_id, rs.headers AS rs_headers, rs."bodyPreview" AS rs_body, '
    'rs."createdAt" AS rs_created '
)
_PAYLOAD_JOINS = (
    'LEFT JOIN "Request" rq ON rq.id = t."requestId" '
    'LEFT JOIN "Response" rs ON rs.id = t."responseId" '
)


@dataclass
class _Record:
    """One Arkyn record checked and masked, before any row is written."""

    row: Any
    created: datetime
    method: str
    level: str
    elapsed: float
    request: Payload | None
    response: Payload | None


def _check_record(run: _Run, row: Any) -> _Record:
    """Raises ValueError naming the field Arkyn stored in a shape LogHarbor cannot keep."""
    method = str(row["method"]).upper()
    if method not in METHODS:
        raise ValueError(f"method: {row['method']!r} is not an HTTP method")
    status = row["status"]
    level = str(row["level"]).upper()
    if level not in LEVELS:
        level = level_for(status)
    elapsed = float(row["elapsedTime"] if row["elapsedTime"] is not None else 0)
    if elapsed < 0:
        raise ValueError(f"elapsedTime: negative ({elapsed:g} ms)")
    request = response = None
    try:
        if row["rq_id"] is not None:
            request = prepare_payload(
                row["rq_headers"], row["rq_body"], run.config, query_params=row["rq_query"]
            )
        if row["rs_id"] is not None:
            response = prepare_payload(row["rs_headers"], row["rs_body"], run.config)
    except BadRequest as exc:
        field_name, why = next(iter(exc.field_errors.items()), ("payload", exc.message))
        raise ValueError(f"{field_name}: {why}") from None
    return _Record(row, timestamp(row["createdAt"]), method, level, elapsed, request, response)


def _payload_row(
    payload: Payload, row_id: str, source_id: str, created: Any, *, query: bool
) -> dict[str, Any]:
    body = payload.body
    values: dict[str, Any] = {
        "id": row_id,
        "traffic_source_id": source_id,
        "owner_user_id": None,
        "headers": payload.headers,
        "body": body.text,
        "body_preview": body.preview,
        "body_size": body.size,
        # Arkyn kept the first 200 characters only: a preview that long was probably cut.
        "body_truncated": body.truncated
        or (body.preview is not None and len(body.preview) >= ARKYN_PREVIEW_CHARS),
        "created_at": timestamp(created),
    }
    if query:
        values["query_params"] = payload.query_params
    return values


def _store_payloads(conn: Connection, records: Sequence[_Record]) -> None:
    request_rows = [
        _payload_row(
            r.request,
            r.row["rq_id"],
            r.row["trafficSourceId"],
            r.row["rq_created"] or r.created,
            query=True,
        )
        for r in records
        if r.request is not None
    ]
    response_rows = [
        _payload_row(
            r.response,
            r.row["rs_id"],
            r.row["trafficSourceId"],
            r.row["rs_created"] or r.created,
            query=False,
        )
        for r in records
        if r.response is not None
    ]
    # A request Arkyn linked to both a record and a core log is stored once, linked by both.
    for table, rows in ((requests, request_rows), (responses, response_rows)):
        new = fresh_rows(conn, table, rows)
        if new:
            conn.execute(insert(table), new)


def _publish(conn: Connection, events: list[TrafficEvent]) -> None:
    """Rollups and exception groups for imported records: what ingest's subscribers do, but no
    webhook notification for history."""
    if events:
        rollups.record(conn, events)
        alert_hooks.record_exceptions(conn, events)


def _checked_page(run: _Run, page: list[Any], tally: Any) -> list[_Record]:
    checked = []
    for row in page:
        try:
            checked.append(_check_record(run, row))
        except ValueError as exc:
            tally.refuse(row["id"], str(exc))
    return checked


@dataclass(frozen=True, slots=True)
class _Place:
    """Where a record is filed in LogHarbor: its columns there, and its event's."""

    columns: dict[str, Any]
    domain_id: str | None
    domain: str | None
    pathname_id: str
    pathname: str


def _traffic_place(conn: Connection, source_id: str, record: _Record) -> _Place:
    row = record.row
    domain_id, origin, _ = _domain(
        conn, source_id, row["domain"], row["protocol"], row["domain_id"], record.created
    )
    pathname_id, pathname, _ = _pathname(
        conn, source_id, domain_id, row["pathname"], row["pathname_id"], record.created
    )
    columns = {"domain_id": domain_id, "pathname_id": pathname_id, "route_pathname_id": None}
    return _Place(columns, domain_id, origin, pathname_id, pathname)


def _core_place(conn: Connection, source_id: str, record: _Record) -> _Place:
    row = record.row
    core_id, route, _ = _core_pathname(
        conn, source_id, row["route"], row["core_id"], record.created
    )
    return _Place({"core_pathname_id": core_id}, None, None, core_id, route)


_TRAFFIC_SQL = (
    'SELECT t.id, t.status, t.method::text AS method, t.level::text AS level, t."trafficUserId", '
    't."trafficSourceId", t."elapsedTime", t."createdAt", d.id AS domain_id, '
    "d.value AS domain, d.protocol::text AS protocol, p.id AS pathname_id, "
    f"p.value AS pathname{_PAYLOADS}"
    'FROM "HttpTraffic" t JOIN "Domain" d ON d.id = t."domainId" '
    f'JOIN "Pathname" p ON p.id = t."pathnameId" {_PAYLOAD_JOINS}WHERE {{after}}'
)
_CORE_SQL = (
    'SELECT t.id, t.status, t.method::text AS method, t.level::text AS level, t."trafficUserId", '
    't."trafficSourceId", t."elapsedTime", t."createdAt", c.id AS core_id, '
    f"c.value AS route{_PAYLOADS}"
    'FROM "CoreLog" t JOIN "CorePathname" c ON c.id = t."corePathnameId" '
    f"{_PAYLOAD_JOINS}WHERE {{after}}"
)


def _import_traffic(run: _Run) -> None:
    _import_records(run, "http traffic", _TRAFFIC_SQL, http_traffic, "traffic", _traffic_place)


def _import_core_logs(run: _Run) -> None:
    _import_records(run, "core logs", _CORE_SQL, core_logs, "core", _core_place)


def _import_records(
    run: _Run,
    kind_name: str,
    sql: str,
    table: Table,
    kind: Literal["traffic", "core"],
    place_of: Callable[[Connection, str, _Record], _Place],
) -> None:
    """Records with their requests and responses, a page per transaction, each with its rollup
    and exception-group share (``_publish``)."""
    tally = run.summary.tally(kind_name)
    for page in _pages(run.source, sql, run.page_size, "t"):
        checked = _checked_page(run, page, tally)
        with run.db.write() as conn:
            sources = _imported_sources(conn, [r.row["trafficSourceId"] for r in checked])
            fresh = {
                row["id"] for row in fresh_rows(conn, table, [{"id": r.row["id"]} for r in checked])
            }
            rows, events, stored = [], [], []
            for record in checked:
                row = record.row
                source_id = row["trafficSourceId"]
                if source_id not in sources:
                    tally.refuse(row["id"], "trafficSourceId: its traffic source was not imported")
                    continue
                if row["id"] not in fresh:
                    tally.skipped += 1
                    continue
                try:
                    place = place_of(conn, source_id, record)
                except ValueError as exc:
                    tally.refuse(row["id"], f"domain or pathname: {exc}")
                    continue
                fresh.discard(row["id"])  # Arkyn ids are unique; this guards a repeated row
                stored.append(record)
                rows.append(
                    {
                        "id": row["id"],
                        "traffic_source_id": source_id,
                        **place.columns,
                        "status": row["status"],
                        "method": record.method,
                        "level": record.level,
                        "elapsed_time": record.elapsed,
                        "traffic_user_id": row["trafficUserId"],
                        "request_id": row["rq_id"] if record.request else None,
                        "response_id": row["rs_id"] if record.response else None,
                        "created_at": record.created,
                    }
                )
                events.append(
                    TrafficEvent(
                        kind=kind,
                        id=row["id"],
                        traffic_source_id=source_id,
                        domain_id=place.domain_id,
                        domain=place.domain,
                        pathname_id=place.pathname_id,
                        pathname=place.pathname,
                        method=record.method,
                        status=row["status"],
                        level=record.level,
                        elapsed_time=record.elapsed,
                        traffic_user_id=row["trafficUserId"],
                        created_at=record.created,
                        response_preview=record.response.body.preview if record.response else None,
                    )
                )
            _store_payloads(conn, stored)
            if rows:
                conn.execute(insert(table), rows)
            _publish(conn, events)
        tally.imported += len(rows)
        run.advance(len(page))


# --- webhooks and leftovers --------------------------------------------------------------------


def _import_webhooks(run: _Run) -> None:
    tally = run.summary.tally("webhooks")
    sql = (
        "SELECT w.id, w.type::text AS type, w.level::text AS level, w.value, "
        'w."trafficSourceId", w."createdAt", w."updatedAt" FROM "Webhook" w WHERE {after}'
    )
    for page in _pages(run.source, sql, run.page_size, "w"):
        with run.db.write() as conn:
            sources = _imported_sources(conn, [row["trafficSourceId"] for row in page])
            rows = []
            for row in page:
                value = str(row["value"]).strip()
                level = str(row["level"]).upper()
                if row["trafficSourceId"] not in sources:
                    tally.refuse(row["id"], "trafficSourceId: its traffic source was not imported")
                    continue
                if not value.lower().startswith("https://") or level not in LEVELS:
                    tally.refuse(
                        row["id"],
                        f"value: Discord channel {value[:40]} was reached through Arkyn's bot; "
                        "add the channel's webhook URL on the source's Webhooks page",
                    )
                    continue
                status_min, status_max = _WEBHOOK_STATUS[level]
                created = timestamp(row["createdAt"])
                rows.append(
                    {
                        "id": row["id"],
                        "traffic_source_id": row["trafficSourceId"],
                        "type": guess_type(value),
                        "value": value[:2048],
                        "level": level,
                        "pathname_prefix": None,
                        "status_min": status_min,
                        "status_max": status_max,
                        "cooldown_seconds": run.cooldown_seconds,
                        "secret": "whsec_" + secrets.token_urlsafe(32),
                        "created_at": created,
                        "updated_at": max(timestamp(row["updatedAt"]), created),
                    }
                )
            new = fresh_rows(conn, webhooks, rows)
            if new:
                conn.execute(insert(webhooks), new)
        tally.imported += len(new)
        tally.skipped += len(rows) - len(new)
        run.advance(len(page))


def _count_orphans(run: _Run) -> None:
    for table, kind in (("Request", "requests"), ("Response", "responses")):
        column = "requestId" if table == "Request" else "responseId"
        with run.source.connect() as conn:
            orphans = int(
                conn.execute(
                    text(
                        f'SELECT count(*) FROM "{table}" x WHERE NOT EXISTS '
                        f'(SELECT 1 FROM "HttpTraffic" t WHERE t."{column}" = x.id) AND NOT EXISTS '
                        f'(SELECT 1 FROM "CoreLog" c WHERE c."{column}" = x.id)'
                    )
                ).scalar_one()
            )
        if orphans:
            tally = run.summary.tally(f"unlinked {kind}")
            tally.refused += orphans
            reason = "linked to no record or core log (left by a failed Arkyn compose)"
            tally.reasons[reason] += orphans
