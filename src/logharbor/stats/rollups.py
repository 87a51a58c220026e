"""Writing the rollups: fold one transaction's traffic into minute, hour and day rows.

Events are aggregated in Python first, so each (key, bucket) is written once per transaction,
with an upsert that adds to what is there (``count = count + excluded.count``). Several workers
or hosts can therefore write the same rows: the database serialises the additions. Rows are
written in key order so that two PostgreSQL transactions touching the same rows lock them in the
same order and cannot deadlock.

Only HTTP traffic (kind "traffic") is rolled up. Core logs (kind "core") describe an app's own
route templates, have no domain, and are counted in their own lists; mixing them into the
per-pathname figures would double-count requests that are also captured as traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func

from logharbor.db import events_schema
from logharbor.db.bulk import BulkInsert, upsertable_insert
from logharbor.db.clickhouse_sql import to_events_row
from logharbor.db.tables import (
    traffic_rollup_latency,
    traffic_rollup_path_latency,
    traffic_rollups,
)
from logharbor.db.writer import RowSink, WriteTx
from logharbor.ingest.events import TrafficEvent
from logharbor.stats.histogram import bucket_of

MINUTE, HOUR, DAY = 60, 3600, 86400
RESOLUTIONS = (MINUTE, HOUR, DAY)
KEY_COLUMNS = (
    "traffic_source_id",
    "resolution",
    "bucket_start",
    "domain_id",
    "pathname_id",
    "method",
    "status_class",
)

# (source, resolution, bucket start in epoch seconds, domain, pathname, method, status class)
Key = tuple[str, int, int, str, str, str, int]
# The first five of those: the key of the per-pathname histogram (all methods and statuses).
PathKey = tuple[str, int, int, str, str]
PATH_KEY_COLUMNS = KEY_COLUMNS[:5]


def status_class(status: int) -> int:
    return min(max(status // 100, 1), 5)


class Rollup:
    """Aggregates of a batch of events, ready to be added to the stored rollups."""

    def __init__(self) -> None:
        # key -> [count, errors, latency_sum, latency_min, latency_max]
        self.rows: dict[Key, list[Any]] = {}
        self.histogram: dict[tuple[Key, int], int] = {}
        self.path_histogram: dict[tuple[PathKey, int], int] = {}

    def add(
        self,
        traffic_source_id: str,
        domain_id: str,
        pathname_id: str,
        method: str,
        status: int,
        elapsed_ms: float,
        created_at: datetime,
    ) -> None:
        epoch = int(created_at.timestamp())
        error = 1 if status >= 400 else 0
        cls = status_class(status)
        bucket = bucket_of(elapsed_ms)
        rows = self.rows
        histogram = self.histogram
        path_histogram = self.path_histogram
        for resolution in RESOLUTIONS:
            start = epoch - epoch % resolution
            key = (traffic_source_id, resolution, start, domain_id, pathname_id, method, cls)
            row = rows.get(key)
            if row is None:
                rows[key] = [1, error, elapsed_ms, elapsed_ms, elapsed_ms]
            else:
                row[0] += 1
                row[1] += error
                row[2] += elapsed_ms
                if elapsed_ms < row[3]:
                    row[3] = elapsed_ms
                if elapsed_ms > row[4]:
                    row[4] = elapsed_ms
            hkey = (key, bucket)
            histogram[hkey] = histogram.get(hkey, 0) + 1
            pkey = ((traffic_source_id, resolution, start, domain_id, pathname_id), bucket)
            path_histogram[pkey] = path_histogram.get(pkey, 0) + 1

    def add_events(self, events: Iterable[TrafficEvent]) -> None:
        for event in events:
            if event.kind != "traffic" or event.domain_id is None:
                continue
            self.add(
                event.traffic_source_id,
                event.domain_id,
                # Counted under its route (/orders/{id}) when known: one key per route, not
                # one per order.
                event.route_pathname_id or event.pathname_id,
                event.method,
                event.status,
                event.elapsed_time,
                event.created_at,
            )

    def write(self, conn: Connection) -> None:
        if not self.rows:
            return
        # On the driver (db.bulk): these upserts run in every group commit of the ingest path,
        # where SQLAlchemy's per-execution work cost more than SQLite's.
        _upsert_rollups(conn, _rollup_params(self.rows))
        _upsert_latency(conn, _latency_params(self.histogram))
        _upsert_path_latency(conn, _path_latency_params(self.path_histogram))


def _key_params(key: Key | PathKey) -> dict[str, Any]:
    params: dict[str, Any] = dict(zip(KEY_COLUMNS, key, strict=False))
    params["bucket_start"] = datetime.fromtimestamp(params["bucket_start"], UTC)
    return params


def _rollup_params(rows: dict[Key, list[Any]]) -> list[dict[str, Any]]:
    params = []
    for key in sorted(rows):
        count, errors, total, lowest, highest = rows[key]
        p = _key_params(key)
        p.update(
            count=count, errors=errors, latency_sum=total, latency_min=lowest, latency_max=highest
        )
        params.append(p)
    return params


def _latency_params(histogram: dict[tuple[Key, int], int]) -> list[dict[str, Any]]:
    params = []
    for key, bucket in sorted(histogram):
        p = _key_params(key)
        p.update(bucket=bucket, count=histogram[(key, bucket)])
        params.append(p)
    return params


def _path_latency_params(histogram: dict[tuple[PathKey, int], int]) -> list[dict[str, Any]]:
    params = []
    for key, bucket in sorted(histogram):
        p = _key_params(key)
        p.update(bucket=bucket, count=histogram[(key, bucket)])
        params.append(p)
    return params


def _rollup_upsert(dialect: str) -> Any:
    stmt = upsertable_insert(dialect, traffic_rollups)
    c, ex = traffic_rollups.c, stmt.excluded
    # Two-argument min()/max() are scalar in SQLite; PostgreSQL spells them least()/greatest().
    smaller = func.least if dialect == "postgresql" else func.min
    larger = func.greatest if dialect == "postgresql" else func.max
    return stmt.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={
            "count": c.count + ex.count,
            "errors": c.errors + ex.errors,
            "latency_sum": c.latency_sum + ex.latency_sum,
            "latency_min": smaller(c.latency_min, ex.latency_min),
            "latency_max": larger(c.latency_max, ex.latency_max),
        },
    )


def _count_upsert(table: Any, key_columns: Sequence[str]) -> Callable[[str], Any]:
    """A histogram table's upsert: add the counts of buckets that exist, insert the others."""

    def build(dialect: str) -> Any:
        stmt = upsertable_insert(dialect, table)
        return stmt.on_conflict_do_update(
            index_elements=[*key_columns, "bucket"],
            set_={"count": table.c.count + stmt.excluded.count},
        )

    return build


# BulkInsert builds each statement once per dialect and runs it on the driver.
_upsert_rollups = BulkInsert(
    traffic_rollups,
    (*KEY_COLUMNS, "count", "errors", "latency_sum", "latency_min", "latency_max"),
    upsert=_rollup_upsert,
)
_upsert_latency = BulkInsert(
    traffic_rollup_latency,
    (*KEY_COLUMNS, "bucket", "count"),
    upsert=_count_upsert(traffic_rollup_latency, KEY_COLUMNS),
)
_upsert_path_latency = BulkInsert(
    traffic_rollup_path_latency,
    (*PATH_KEY_COLUMNS, "bucket", "count"),
    upsert=_count_upsert(traffic_rollup_path_latency, PATH_KEY_COLUMNS),
)


def record(conn: Connection, events: Sequence[TrafficEvent]) -> None:
    rollup = Rollup()
    rollup.add_events(events)
    rollup.write(conn)


class EventsStoreRollups:
    """The subscriber that keeps the rollups on ClickHouse when events live there: the same
    rows, staged on the write transaction and appended with the records' own insert."""

    def __init__(self, sink: RowSink) -> None:
        self.sink = sink

    def __call__(self, tx: WriteTx, events: Sequence[TrafficEvent]) -> None:
        rollup = Rollup()
        rollup.add_events(events)
        for table, rows in (
            (events_schema.traffic_rollups, _rollup_params(rollup.rows)),
            (events_schema.traffic_rollup_latency, _latency_params(rollup.histogram)),
            (
                events_schema.traffic_rollup_path_latency,
                _path_latency_params(rollup.path_histogram),
            ),
        ):
            tx.stage(
                self.sink,
                events_schema.written_to(table.name),
                [to_events_row(table, row) for row in rows],
            )
