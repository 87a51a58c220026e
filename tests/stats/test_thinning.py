"""Rollup thinning: old minute and hour rollups go, and stats past the horizons stay exact."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fixtures.records import RANDOM_START, Layout
from fixtures.sources import Source
from fixtures.users import AUser
from logharbor import retention_job
from logharbor.common.timestamps import iso, parse_iso
from logharbor.db.clickhouse import from_epoch_ms
from logharbor.db.events_schema import merged
from logharbor.db.tables import (
    stats_horizons,
    traffic_rollup_latency,
    traffic_rollup_path_latency,
    traffic_rollups,
)
from logharbor.stats.rollups import DAY, HOUR, MINUTE
from logharbor.stats.thinning import thin_rollups
from stats.stats_support import assert_matches, exact, group_key, raw_rows

# The fixture's traffic spans RANDOM_START .. RANDOM_START + 9 days; "now" is just after it.
NOW = RANDOM_START + timedelta(days=9, hours=1)
MINUTE_DAYS, HOUR_DAYS = 2, 5
MINUTES_FROM = parse_iso("2025-07-10T11:00:00Z")  # NOW - 2 days, floored to the hour
HOURS_FROM = parse_iso("2025-07-07T00:00:00Z")  # NOW - 5 days, floored to the day
TABLES = (traffic_rollups, traffic_rollup_latency, traffic_rollup_path_latency)


def _rows_by_resolution(client: TestClient) -> dict[tuple[str, int], tuple[int, Any, Any]]:
    found = {}
    db = client.app.state.db  # type: ignore[attr-defined]
    if db.events is not None:
        for table in TABLES:
            rows = db.events.query(
                "SELECT resolution, count() AS n, min(bucket_start) AS oldest, "
                f"max(bucket_start) AS newest FROM {merged(table.name)} GROUP BY resolution"
            )
            for row in rows:
                found[(table.name, row["resolution"])] = (
                    row["n"],
                    from_epoch_ms(row["oldest"]),
                    from_epoch_ms(row["newest"]),
                )
        return found
    with db.read() as conn:
        for table in TABLES:
            c = table.c
            query = select(
                c.resolution, func.count(), func.min(c.bucket_start), func.max(c.bucket_start)
            ).group_by(c.resolution)
            for resolution, n, oldest, newest in conn.execute(query):
                found[(table.name, resolution)] = (n, oldest, newest)
    return found


def _prune(client: TestClient) -> int:
    db = client.app.state.db  # type: ignore[attr-defined]
    return thin_rollups(db, now=NOW, minute_days=MINUTE_DAYS, hour_days=HOUR_DAYS)


def test_minute_and_hour_rows_past_their_horizons_go_and_day_rows_stay(
    client: TestClient, source: Source, random_traffic: Layout
) -> None:
    before = _rows_by_resolution(client)
    deleted = _prune(client)
    after = _rows_by_resolution(client)

    assert deleted == sum(before[k][0] for k in before) - sum(after[k][0] for k in after) > 0
    for table in TABLES:
        minutes, hours, days = (after[(table.name, r)] for r in (MINUTE, HOUR, DAY))
        assert minutes[1] >= MINUTES_FROM and minutes[2] == before[(table.name, MINUTE)][2]
        assert hours[1] >= HOURS_FROM and hours[2] == before[(table.name, HOUR)][2]
        assert days == before[(table.name, DAY)]
        assert minutes[0] < before[(table.name, MINUTE)][0]
    with client.app.state.db.read() as conn:  # type: ignore[attr-defined]
        recorded = dict(conn.execute(select(stats_horizons)).all())
    assert recorded == {MINUTE: MINUTES_FROM, HOUR: HOURS_FROM}

    assert _prune(client) == 0  # nothing left to do
    # A later run with longer horizons does not claim back what is gone.
    db = client.app.state.db  # type: ignore[attr-defined]
    thin_rollups(db, now=NOW, minute_days=30, hour_days=60)
    with db.read() as conn:
        assert dict(conn.execute(select(stats_horizons)).all()) == recorded


def _stats(client: TestClient, user: AUser, source: Source, **params: str) -> Any:
    return client.get(f"/stats/{source.id}", params=params, headers=user.headers)


@pytest.mark.parametrize(
    ("start", "end", "interval", "effective_start", "effective_end"),
    [
        # Starts past the hour horizon: widened to the day; daily points only.
        (
            "2025-07-04T05:33:10Z",
            "2025-07-11T03:02:00Z",
            "1d",
            "2025-07-04T00:00",
            "2025-07-11T03:02",
        ),
        # Starts past the minute horizon: widened to the hour.
        (
            "2025-07-08T05:33:10Z",
            "2025-07-11T03:02:00Z",
            "1h",
            "2025-07-08T05:00",
            "2025-07-11T03:02",
        ),
        # Ends there too: rounded up to the hour.
        (
            "2025-07-08T05:33:10Z",
            "2025-07-09T07:02:00Z",
            "1h",
            "2025-07-08T05:00",
            "2025-07-09T08:00",
        ),
        # Within the minute horizon: as before, to the minute.
        (
            "2025-07-10T13:41:00Z",
            "2025-07-11T03:02:00Z",
            "5m",
            "2025-07-10T13:41",
            "2025-07-11T03:02",
        ),
    ],
)
def test_stats_past_the_horizons_agree_with_raw_rows_over_the_widened_range(
    client: TestClient,
    user: AUser,
    source: Source,
    random_traffic: Layout,
    start: str,
    end: str,
    interval: str,
    effective_start: str,
    effective_end: str,
) -> None:
    _prune(client)
    response = _stats(
        client,
        user,
        source,
        startDate=start,
        endDate=end,
        interval=interval,
        groupBy="pathname",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["startDate"] == f"{effective_start}:00.000Z"
    assert body["endDate"] == f"{effective_end}:00.000Z"
    first, last = parse_iso(body["startDate"]), parse_iso(body["endDate"])
    rows = [r for r in raw_rows(client, source.id) if first <= r["created_at"] < last]
    assert rows
    assert_matches(body["totals"], exact(rows))
    assert sum(point["count"] for point in body["series"]) == len(rows)
    by_group: dict[str, list[Any]] = {}
    for row in rows:
        by_group.setdefault(group_key("pathname", row), []).append(row)
    assert {group["key"] for group in body["groups"]} == set(by_group)
    for group in body["groups"]:
        assert_matches(group, exact(by_group[group["key"]]))


def test_a_series_finer_than_the_detail_kept_is_refused_and_auto_picks_what_is_kept(
    client: TestClient, user: AUser, source: Source, random_traffic: Layout
) -> None:
    _prune(client)
    old = {"startDate": "2025-07-08T05:33:10Z", "endDate": "2025-07-08T09:00:00Z"}
    refused = _stats(client, user, source, **old, interval="5m")
    assert refused.status_code == 400
    assert "use interval 1h" in refused.json()["fieldErrors"]["interval"]
    assert _stats(client, user, source, **old).json()["interval"] == "1h"
    older = {"startDate": "2025-07-04T05:33:10Z", "endDate": "2025-07-04T09:00:00Z"}
    assert _stats(client, user, source, **older, interval="1h").status_code == 400
    assert _stats(client, user, source, **older).json()["interval"] == "1d"
    # Before any pruning (another source of the same fixture data), minutes are there.
    recent = {"startDate": iso(NOW - timedelta(hours=3)), "endDate": iso(NOW)}
    assert _stats(client, user, source, **recent, interval="1m").status_code == 200


def test_the_retention_job_thins_the_rollups_after_the_records(
    client: TestClient, source: Source, random_traffic: Layout
) -> None:
    before = _rows_by_resolution(client)
    report = retention_job.prune(
        client.app.state.db,  # type: ignore[attr-defined]
        rollup_days=(MINUTE_DAYS, HOUR_DAYS),
        now=NOW,
    )
    assert report.rollups > 0
    assert report.rollups == sum(v[0] for v in before.values()) - sum(
        v[0] for v in _rows_by_resolution(client).values()
    )
