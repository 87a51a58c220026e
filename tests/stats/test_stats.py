"""Stats from the rollups agree with a brute-force computation over the raw rows."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fixtures.records import RANDOM_START, Layout
from fixtures.sources import Source
from fixtures.users import AUser
from logharbor.common.timestamps import iso, parse_iso
from logharbor.db.tables import http_traffic, traffic_rollups
from logharbor.stats.histogram import MAX_RELATIVE_ERROR, bucket_of, percentiles
from stats.stats_support import assert_matches, exact, group_key, raw_rows


@pytest.mark.parametrize("group_by", [None, "pathname", "domain", "status", "method"])
def test_stats_agree_with_raw_rows(
    client: TestClient, user: AUser, source: Source, random_traffic: Layout, group_by: str | None
) -> None:
    params = {"startDate": "2025-07-04T05:33:10.500Z", "endDate": "2025-07-11T03:02:00.000Z"}
    params["interval"] = "1h"
    if group_by:
        params["groupBy"] = group_by
    response = client.get(f"/stats/{source.id}", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    first, last = parse_iso(body["startDate"]), parse_iso(body["endDate"])
    assert iso(first) == "2025-07-04T05:33:00.000Z"
    assert iso(last) == "2025-07-11T03:02:00.000Z"
    rows = [r for r in raw_rows(client, source.id) if first <= r["created_at"] < last]
    assert 1000 < len(rows) < 3000
    assert_matches(body["totals"], exact(rows))

    # Time series: one point per hour, zero-filled, each matching the raw rows of that hour.
    by_hour: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_hour[r["created_at"].replace(minute=0, second=0, microsecond=0)].append(r)
    assert len(body["series"]) == 7 * 24 - 2 + 1
    for point in body["series"]:
        hour = parse_iso(point["time"])
        want = exact(by_hour.get(hour, []))
        if want["count"]:
            assert_matches(point, want)
        else:
            assert point["count"] == 0 and point["avgLatency"] is None
    assert sum(p["count"] for p in body["series"]) == len(rows)

    if group_by is None:
        assert body["groups"] == []
        return
    expected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        expected[group_key(group_by, r)].append(r)
    assert {g["key"] for g in body["groups"]} == set(expected)
    counts = [g["count"] for g in body["groups"]]
    assert counts == sorted(counts, reverse=True)
    for group in body["groups"]:
        assert_matches(group, exact(expected[group["key"]]))
        if group_by == "pathname":
            assert group["pathname"] in ("/", "/orders", "/users/{id}", "/health")
            assert group["domain"] in ("api.example.com", "cdn.example.com")
        if group_by == "status":
            assert group["status"] == f"{group['key']}xx"


def test_filters_and_daily_interval(
    client: TestClient, user: AUser, source: Source, random_traffic: Layout
) -> None:
    path_id = random_traffic.pathname_ids[("api.example.com", "/orders")]
    params = {
        "startDate": "2025-07-03T00:00:00Z",
        "endDate": "2025-07-13T00:00:00Z",
        "interval": "1d",
        "pathnameId": path_id,
        "method": "get",
        "status": "2XX",
    }
    response = client.get(f"/stats/{source.id}", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    rows = [
        r
        for r in raw_rows(client, source.id)
        if r["pathname_id"] == path_id and r["method"] == "GET" and 200 <= r["status"] < 300
    ]
    assert rows
    assert_matches(body["totals"], exact(rows))
    assert len(body["series"]) == 10
    assert [p["count"] for p in body["series"]] == [
        sum(1 for r in rows if r["created_at"].date() == (RANDOM_START + timedelta(days=d)).date())
        for d in range(-0, 10)
    ]


def test_only_rollups_are_read(
    client: TestClient, user: AUser, source: Source, random_traffic: Layout
) -> None:
    """Delete the raw rows: the statistics stay (they never scan raw traffic)."""
    db = client.app.state.db  # type: ignore[attr-defined]
    params = {"startDate": "2025-07-01T00:00:00Z", "endDate": "2025-07-20T00:00:00Z"}
    before = client.get(f"/stats/{source.id}", params=params, headers=user.headers).json()
    if db.events is None:
        with db.write() as conn:
            conn.execute(http_traffic.delete())
        with db.read() as conn:
            query = select(traffic_rollups.c.resolution).distinct()
            resolutions = {r for (r,) in conn.execute(query)}
    else:
        db.events.command("TRUNCATE TABLE http_traffic")
        rows = db.events.query("SELECT DISTINCT resolution FROM traffic_rollups")
        resolutions = {row["resolution"] for row in rows}
    after = client.get(f"/stats/{source.id}", params=params, headers=user.headers).json()
    assert after["totals"]["count"] == before["totals"]["count"] == 3000
    # Equal but for the last bits of float sums, which ClickHouse adds in no fixed order.
    assert len(after["series"]) == len(before["series"])
    for now, then in zip(after["series"], before["series"], strict=True):
        assert now == {
            key: pytest.approx(value, rel=1e-12) if isinstance(value, float) else value
            for key, value in then.items()
        }
    # Minute, hour and day rows exist for the same traffic.
    assert resolutions == {60, 3600, 86400}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"startDate": "yesterday"}, "startDate"),
        ({"endDate": "2025-13-01T00:00:00Z"}, "endDate"),
        ({"startDate": "2025-07-05T00:00:00Z", "endDate": "2025-07-04T00:00:00Z"}, "startDate"),
        ({"groupBy": "user"}, "groupBy"),
        ({"interval": "2m"}, "interval"),
        (
            {
                "startDate": "2025-07-01T00:00:00Z",
                "endDate": "2025-07-08T00:00:00Z",
                "interval": "5m",
            },
            "interval",
        ),
        ({"method": "FETCH"}, "method"),
        ({"status": "200"}, "status"),
        ({"pathnameId": "nope"}, "pathnameId"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_parameters_are_400_with_the_field(
    client: TestClient,
    user: AUser,
    source: Source,
    random_traffic: Layout,
    params: dict[str, str],
    field: str,
) -> None:
    response = client.get(f"/stats/{source.id}", params=params, headers=user.headers)
    assert response.status_code == 400, response.text
    assert field in response.json()["fieldErrors"]


def test_access(
    client: TestClient, user: AUser, make_user: Any, source: Source, random_traffic: Layout
) -> None:
    other = make_user()
    assert client.get(f"/stats/{source.id}", headers=other.headers).status_code == 403
    assert client.get(f"/stats/{source.id}").status_code == 400
    missing = "01890000-0000-7000-8000-000000000000"
    assert client.get(f"/stats/{missing}", headers=user.headers).status_code == 404
    assert client.get("/stats/not-a-uuid", headers=user.headers).status_code == 400


def test_histogram_estimates_stay_within_the_bucket_error() -> None:
    values = [0.37 * 1.013**i for i in range(2000)]
    counts: dict[int, int] = defaultdict(int)
    for v in values:
        counts[bucket_of(v)] += 1
    for q in (0.01, 0.5, 0.9, 0.95, 0.99, 1.0):
        exact = values[max(1, math.ceil(q * len(values))) - 1]
        (estimate,) = percentiles(counts, [q], lowest=values[0], highest=values[-1])
        assert estimate is not None
        assert abs(estimate - exact) <= exact * MAX_RELATIVE_ERROR
    assert percentiles({}, [0.5]) == [None]
