"""Brute-force figures over raw traffic rows, to check what the stats API computes from rollups."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from logharbor.db import events_schema
from logharbor.db.clickhouse_sql import fetch
from logharbor.db.tables import http_traffic
from logharbor.stats.histogram import MAX_RELATIVE_ERROR


def raw_rows(client: TestClient, source_id: str) -> list[dict[str, Any]]:
    db = client.app.state.db  # type: ignore[attr-defined]
    if db.events is not None:
        table = events_schema.http_traffic
        return fetch(db.events, select(table).where(table.c.traffic_source_id == source_id))
    with db.read() as conn:
        rows = conn.execute(
            select(http_traffic).where(http_traffic.c.traffic_source_id == source_id)
        ).mappings()
        return [dict(r) for r in rows]


def exact(rows: list[dict[str, Any]]) -> dict[str, Any]:
    lat = sorted(r["elapsed_time"] for r in rows)
    n = len(lat)

    def pct(q: float) -> float | None:
        return lat[max(1, math.ceil(q * n)) - 1] if n else None

    return {
        "count": n,
        "errors": sum(1 for r in rows if r["status"] >= 400),
        "serverErrors": sum(1 for r in rows if r["status"] >= 500),
        "avgLatency": sum(lat) / n if n else None,
        "minLatency": lat[0] if n else None,
        "maxLatency": lat[-1] if n else None,
        "p50": pct(0.5),
        "p95": pct(0.95),
        "p99": pct(0.99),
    }


def assert_matches(got: dict[str, Any], want: dict[str, Any]) -> None:
    for field in ("count", "errors", "serverErrors"):
        assert got[field] == want[field], field
    assert got["errorRate"] == pytest.approx(want["errors"] / want["count"] if want["count"] else 0)
    for field in ("avgLatency", "minLatency", "maxLatency"):
        assert got[field] == pytest.approx(want[field], rel=1e-9, abs=1e-9), field
    for field in ("p50", "p95", "p99"):
        if field not in got:
            continue
        exact, estimate = want[field], got[field]
        if exact is None:
            assert estimate is None
            continue
        # Same histogram bucket as the exact value, hence within the bucket's error.
        if exact > 0.001:
            assert abs(estimate - exact) <= exact * MAX_RELATIVE_ERROR + 1e-9, (field, got, want)
        else:
            assert estimate <= 0.001 * (1 + 2 * MAX_RELATIVE_ERROR), field


def group_key(group_by: str, row: dict[str, Any]) -> str:
    if group_by == "status":
        return f"{row['status'] // 100}"
    if group_by == "pathname":  # a record with a route template counts under the route
        return str(row["route_pathname_id"] or row["pathname_id"])
    return str(
        row[{"pathname": "pathname_id", "domain": "domain_id", "method": "method"}[group_by]]
    )
