"""Query-string filters and sorting of the traffic lists, as the Arkyn docs promise them.

Every filter the docs list works (the original ignored most of them), bad values are a 400 naming
the parameter, and the same conditions feed both the page query and ``totalItems``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query
from sqlalchemy import Table, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from logharbor.common.errors import BadRequest
from logharbor.common.ids import is_uuid
from logharbor.common.pagination import parse_sort
from logharbor.common.timestamps import parse_iso
from logharbor.db.tables import core_pathnames, domains, pathnames
from logharbor.ingest import normalize as ingest_normalize
from logharbor.traffic import normalize


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains(column: Any, text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match, with LIKE wildcards in ``text`` taken literally."""
    return func.lower(column).like(_like_pattern(text), escape="\\")


@dataclass(frozen=True)
class TrafficFilters:
    method: str | None = None
    status_range: tuple[int, int] | None = None
    level: str | None = None
    domain_id: str | None = None
    pathname_id: str | None = None
    domain: str | None = None
    pathname: str | None = None
    core_pathname_id: str | None = None
    traffic_user_id: str | None = None
    trace_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None  # exclusive
    text: str | None = None

    def conditions(self, table: Table, source_id: str) -> list[ColumnElement[bool]]:
        """WHERE conditions on ``http_traffic`` or ``core_logs`` rows of ``source_id``."""
        where: list[ColumnElement[bool]] = [table.c.traffic_source_id == source_id]
        if self.method:
            where.append(table.c.method == self.method)
        if self.status_range:
            low, high = self.status_range
            where.append(
                table.c.status == low if low == high else table.c.status.between(low, high)
            )
        if self.level:
            where.append(table.c.level == self.level)
        if self.traffic_user_id is not None:
            where.append(table.c.traffic_user_id == self.traffic_user_id)
        if self.trace_id is not None:
            where.append(table.c.trace_id == self.trace_id)
        if self.start is not None:
            where.append(table.c.created_at >= self.start)
        if self.end is not None:
            where.append(table.c.created_at < self.end)
        if "core_pathname" in table.c or "pathname" in table.c:
            where.extend(self._wide_conditions(table))
        elif "core_pathname_id" in table.c:
            where.extend(self._core_conditions(table, source_id))
        else:
            where.extend(self._http_conditions(table, source_id))
        return where

    def _wide_conditions(self, table: Table) -> list[ColumnElement[bool]]:
        """The same filters on ClickHouse's wide rows, which carry their names as values."""
        where: list[ColumnElement[bool]] = []
        if "core_pathname" in table.c:
            if self.core_pathname_id:
                where.append(table.c.core_pathname_id == self.core_pathname_id)
            if self.pathname:
                where.append(table.c.core_pathname == self.pathname)
            if self.text:
                where.append(contains(table.c.core_pathname, self.text))
            return where
        where.extend(self._id_conditions(table))
        if self.domain:
            where.append(table.c.domain == self.domain)
        if self.pathname:
            where.append(or_(table.c.pathname == self.pathname, table.c.route == self.pathname))
        if self.text:
            where.append(
                or_(contains(table.c.pathname, self.text), contains(table.c.route, self.text))
            )
        return where

    def _id_conditions(self, table: Table) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.domain_id:
            where.append(table.c.domain_id == self.domain_id)
        # A record is found by its concrete pathname and by its route template's (as counted in
        # the statistics, whose groups link here).
        if self.pathname_id:
            where.append(
                or_(
                    table.c.pathname_id == self.pathname_id,
                    table.c.route_pathname_id == self.pathname_id,
                )
            )
        return where

    def _http_conditions(self, table: Table, source_id: str) -> list[ColumnElement[bool]]:
        where = self._id_conditions(table)
        if self.domain:
            where.append(
                table.c.domain_id.in_(
                    select(domains.c.id).where(
                        domains.c.traffic_source_id == source_id, domains.c.value == self.domain
                    )
                )
            )
        if self.pathname or self.text:
            names = select(pathnames.c.id).where(pathnames.c.traffic_source_id == source_id)
            if self.pathname:
                names = names.where(pathnames.c.value == self.pathname)
            if self.text:
                names = names.where(contains(pathnames.c.value, self.text))
            where.append(or_(table.c.pathname_id.in_(names), table.c.route_pathname_id.in_(names)))
        return where

    def _core_conditions(self, table: Table, source_id: str) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.core_pathname_id:
            where.append(table.c.core_pathname_id == self.core_pathname_id)
        if self.pathname or self.text:
            names = select(core_pathnames.c.id).where(
                core_pathnames.c.traffic_source_id == source_id
            )
            if self.pathname:
                names = names.where(core_pathnames.c.value == self.pathname)
            if self.text:
                names = names.where(contains(core_pathnames.c.value, self.text))
            where.append(table.c.core_pathname_id.in_(names))
        return where


def _parse_status(raw: str) -> tuple[int, int]:
    text = raw.strip().lower()
    if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
        base = int(text[0]) * 100
        return base, base + 99
    if not text.isascii() or not text.isdigit() or not 100 <= int(text) <= 599:
        raise ValueError("status must be an integer from 100 to 599, or a class such as 5xx")
    return int(text), int(text)


def _parse_date(raw: str, *, end: bool) -> datetime:
    text = raw.strip()
    try:
        value = parse_iso(text)
    except ValueError:
        raise ValueError("must be an ISO-8601 date or date-time") from None
    # A bare date as endDate means "through that day", which is what people mean by it.
    if not end:
        return value
    step = timedelta(days=1) if len(text) == 10 else timedelta(milliseconds=1)
    try:
        return value + step
    except OverflowError:  # through 9999-12-31: no end at all
        return datetime.max.replace(tzinfo=UTC)


def _step(errors: dict[str, str], field: str, parse: Any, raw: str | None) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return parse(raw)
    except ValueError as exc:
        errors[field] = str(exc)
        return None


def _uuid(raw: str) -> str:
    if not is_uuid(raw):
        raise ValueError("Invalid id format")
    return raw.lower()


def _common(
    errors: dict[str, str],
    method: str | None,
    status: str | None,
    level: str | None,
    traffic_user_id: str | None,
    start_date: str | None,
    end_date: str | None,
    trace_id: str | None,
) -> dict[str, Any]:
    parsed = {
        "trace_id": _step(errors, "traceId", ingest_normalize.trace_id, trace_id),
        "method": _step(errors, "method", normalize.parse_method, method),
        "status_range": _step(errors, "status", _parse_status, status),
        "level": _step(errors, "level", normalize.parse_level, level),
        "traffic_user_id": traffic_user_id or None,
        "start": _step(errors, "startDate", lambda v: _parse_date(v, end=False), start_date),
        "end": _step(errors, "endDate", lambda v: _parse_date(v, end=True), end_date),
    }
    if parsed["start"] and parsed["end"] and parsed["start"] >= parsed["end"]:
        errors.setdefault("endDate", "endDate must be after startDate")
    return parsed


_Q = Annotated[str | None, Query()]


def traffic_filters(
    method: Annotated[str | None, Query(description="GET, POST, ... (any case)")] = None,
    status: Annotated[str | None, Query(description="A status code, or a class: 4xx")] = None,
    level: Annotated[str | None, Query(description="INFO, WARNING or FATAL (any case)")] = None,
    domainId: _Q = None,
    pathnameId: _Q = None,
    domain: Annotated[str | None, Query(description="Origin, e.g. https://api.example.com")] = None,
    pathname: Annotated[str | None, Query(description="Exact pathname, e.g. /v1/users")] = None,
    trafficUserId: _Q = None,
    traceId: Annotated[str | None, Query(description="A W3C trace id (32 hex digits)")] = None,
    startDate: Annotated[str | None, Query(description="ISO-8601; inclusive")] = None,
    endDate: Annotated[str | None, Query(description="ISO-8601; a bare date is inclusive")] = None,
    q: Annotated[str | None, Query(description="Case-insensitive text in the pathname")] = None,
    search: Annotated[str | None, Query(description="Same as q")] = None,
) -> TrafficFilters:
    errors: dict[str, str] = {}
    common = _common(errors, method, status, level, trafficUserId, startDate, endDate, traceId)
    origin = _step(errors, "domain", lambda v: normalize.normalize_domain(v)[0], domain)
    result = TrafficFilters(
        **common,
        domain_id=_step(errors, "domainId", _uuid, domainId),
        pathname_id=_step(errors, "pathnameId", _uuid, pathnameId),
        domain=origin,
        pathname=pathname or None,
        text=(q or search or None),
    )
    if errors:
        raise BadRequest("Invalid filter parameters", field_errors=errors)
    return result


def core_log_filters(
    method: Annotated[str | None, Query(description="GET, POST, ... (any case)")] = None,
    status: Annotated[str | None, Query(description="A status code, or a class: 4xx")] = None,
    level: Annotated[str | None, Query(description="INFO, WARNING or FATAL (any case)")] = None,
    corePathnameId: _Q = None,
    pathname: Annotated[
        str | None, Query(description="Exact core pathname, e.g. /users/:id")
    ] = None,
    trafficUserId: _Q = None,
    traceId: Annotated[str | None, Query(description="A W3C trace id (32 hex digits)")] = None,
    startDate: Annotated[str | None, Query(description="ISO-8601; inclusive")] = None,
    endDate: Annotated[str | None, Query(description="ISO-8601; a bare date is inclusive")] = None,
    q: Annotated[
        str | None, Query(description="Case-insensitive text in the core pathname")
    ] = None,
    search: Annotated[str | None, Query(description="Same as q")] = None,
) -> TrafficFilters:
    errors: dict[str, str] = {}
    common = _common(errors, method, status, level, trafficUserId, startDate, endDate, traceId)
    result = TrafficFilters(
        **common,
        core_pathname_id=_step(errors, "corePathnameId", _uuid, corePathnameId),
        pathname=pathname or None,
        text=(q or search or None),
    )
    if errors:
        raise BadRequest("Invalid filter parameters", field_errors=errors)
    return result


Filters = Annotated[TrafficFilters, Depends(traffic_filters)]
CoreLogFilters = Annotated[TrafficFilters, Depends(core_log_filters)]


@dataclass(frozen=True)
class SortRequest:
    field: str | None
    direction: str | None

    def resolve(self, allowed: dict[str, Any], default: str = "createdAt") -> tuple[Any, bool]:
        return parse_sort(self.field, self.direction, allowed, default)


def sort_request(
    sort: Annotated[str | None, Query(description="Field to sort by (see the route)")] = None,
    sortDirection: Annotated[str | None, Query(description="asc or desc (default)")] = None,
) -> SortRequest:
    return SortRequest(sort, sortDirection)


Sort = Annotated[SortRequest, Depends(sort_request)]


def name_filter(
    q: Annotated[str | None, Query(description="Case-insensitive text in the value")] = None,
) -> str | None:
    return q or None


NameFilter = Annotated[str | None, Depends(name_filter)]
