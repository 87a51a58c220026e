"""Export of a traffic source's records as JSON Lines or CSV (``logharbor export``).

Records stream in pages ordered by (created_at, id) and resumed after the last one seen (keyset
pagination), so an export of millions of rows holds one page in memory and never skips or repeats
a record when new ones arrive meanwhile.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import and_, or_

from logharbor.common.errors import NotFound
from logharbor.common.timestamps import iso
from logharbor.db.engine import Database
from logharbor.traffic import queries
from logharbor.traffic.filters import TrafficFilters
from logharbor.traffic.record_reads import record_reads

PAGE = 1000

CSV_COLUMNS = (
    "id",
    "createdAt",
    "method",
    "status",
    "level",
    "elapsedTime",
    "protocol",
    "domain",
    "pathname",
    "trafficUserId",
    "requestHeaders",
    "queryParams",
    "requestBody",
    "responseHeaders",
    "responseBody",
)


def iter_records(
    db: Database, source_id: str, filters: TrafficFilters, *, page_size: int = PAGE
) -> Iterator[dict[str, Any]]:
    """Every matching record of ``source_id`` with full request and response, oldest first."""
    with db.read() as conn:
        if queries.source_row(conn, source_id) is None:
            raise NotFound("Traffic source not found")
    reads = record_reads(db)
    table = reads.traffic
    after: tuple[datetime, str] | None = None
    while True:
        where = filters.conditions(table, source_id)
        if after is not None:
            created, last_id = after
            where.append(
                or_(
                    table.c.created_at > created,
                    and_(table.c.created_at == created, table.c.id > last_id),
                )
            )
        query = (
            reads.record_select(full=True)
            .where(*where)
            .order_by(table.c.created_at, table.c.id)
            .limit(page_size)
        )
        rows = reads.rows(query)
        for row in rows:
            yield queries.joined_record_json(row, full=True)
        if len(rows) < page_size:
            return
        after = (rows[-1]["created_at"], rows[-1]["id"])


def _jsonable(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def write_jsonl(records: Iterator[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, default=_jsonable) + "\n")
        count += 1
    return count


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float)):
        return value
    return json.dumps(value, ensure_ascii=False, default=_jsonable)


def write_csv(records: Iterator[dict[str, Any]], out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        request = record.get("request") or {}
        response = record.get("response") or {}
        flat = {
            **record,
            "requestHeaders": request.get("headers"),
            "queryParams": request.get("queryParams"),
            "requestBody": request.get("body"),
            "responseHeaders": response.get("headers"),
            "responseBody": response.get("body"),
        }
        writer.writerow([_cell(_jsonable(flat.get(column))) for column in CSV_COLUMNS])
        count += 1
    return count
