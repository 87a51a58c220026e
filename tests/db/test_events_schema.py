"""The ClickHouse schema's migrations carry stored rows, on chDB and on a real 18.16 cluster.

Migration 4 turns the main statistics rollup from appended rows of plain numbers into aggregate
states that fold as parts merge; the figures a statistics query reads must not change.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from clickhouse_servers import replicated_servers
from fixtures.database import events_url_for
from logharbor.cli import app
from logharbor.db import events_schema
from logharbor.db.clickhouse import EventsClient

_names = itertools.count()
_KEY = "traffic_source_id, resolution, bucket_start, domain_id, pathname_id, method, status_class"


def _appended(seed: int, rows: int) -> list[dict[str, Any]]:
    """Rollup rows as group commits append them: many rows per key, on two sources."""
    pick = random.Random(seed)
    out = []
    for _ in range(rows):
        lowest = round(pick.uniform(0.5, 50), 3)
        out.append(
            {
                "traffic_source_id": pick.choice([f"source-{n}" for n in range(6)]),
                "resolution": pick.choice((60, 3600)),
                "bucket_start": 1_780_000_000_000 + pick.randrange(4) * 3_600_000,
                "domain_id": "domain-1",
                "pathname_id": pick.choice(("path-1", "path-2", "path-3")),
                "method": pick.choice(("GET", "POST")),
                "status_class": pick.choice((2, 5)),
                "count": (n := pick.randrange(1, 20)),
                "errors": pick.randrange(0, n + 1),
                "latency_sum": round(n * lowest * 1.5, 3),
                "latency_min": lowest,
                "latency_max": round(lowest * 3, 3),
            }
        )
    return out


def _figures(events: EventsClient, *, folded: bool) -> list[dict[str, Any]]:
    merge = "Merge" if folded else ""
    return events.query(
        f"SELECT {_KEY}, sum{merge}(count) AS count, sum{merge}(errors) AS errors, "
        f"round(sum{merge}(latency_sum), 3) AS latency_sum, "
        f"round(min{merge}(latency_min), 3) AS latency_min, "
        f"round(max{merge}(latency_max), 3) AS latency_max "
        f"FROM traffic_rollups GROUP BY {_KEY} ORDER BY {_KEY}"
    )


def _expected(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = _KEY.split(", ")
    folded: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        into = folded.get(key)
        if into is None:
            folded[key] = dict(row)
            continue
        into["count"] += row["count"]
        into["errors"] += row["errors"]
        into["latency_sum"] += row["latency_sum"]
        into["latency_min"] = min(into["latency_min"], row["latency_min"])
        into["latency_max"] = max(into["latency_max"], row["latency_max"])
    return [
        {**row, "latency_sum": round(row["latency_sum"], 3)}
        for _, row in sorted(folded.items(), key=lambda item: item[0])
    ]


def _nothing() -> None:
    pass


def _fold_keeps_the_figures(events: EventsClient, settle: Callable[[], None] = _nothing) -> None:
    """``settle``: waits until a read sees what was written (replicas have fetched it)."""
    assert events_schema.upgrade(events, target=3) == [1, 2, 3]
    before = _appended(1, 400)
    for start in range(0, len(before), 100):  # several inserts: several parts
        events.insert("traffic_rollups", before[start : start + 100])
    settle()
    assert _figures(events, folded=False) == _expected(before)

    assert events_schema.upgrade(events) == [4]
    settle()

    assert _figures(events, folded=True) == _expected(before)
    keys = len(_expected(before))
    final = events.query("SELECT count() AS n FROM traffic_rollups FINAL")
    assert int(final[0]["n"]) == keys  # one row per key once merged
    # Rows written from now on go through the input table and fold with the carried ones.
    after = _appended(2, 150)
    events.insert(events_schema.written_to("traffic_rollups"), after)
    settle()
    assert _figures(events, folded=True) == _expected(before + after)
    assert events.query("SELECT count() AS n FROM traffic_rollups_input")[0]["n"] == 0


@pytest.fixture
def chdb_events(chdb_directory: Path) -> Iterator[EventsClient]:
    events = EventsClient.from_url(events_url_for("chdb", chdb_directory))
    try:
        yield events
    finally:
        events.close()


def test_folding_the_main_rollup_keeps_its_figures_on_chdb(chdb_events: EventsClient) -> None:
    _fold_keeps_the_figures(chdb_events)


@pytest.mark.slow
def test_folding_the_main_rollup_keeps_its_figures_on_a_cluster(clickhouse_cluster: Any) -> None:
    events = EventsClient.from_url(clickhouse_cluster.events_url(f"fold{next(_names)}"))
    try:
        _fold_keeps_the_figures(events)
        # Both shards hold rows, and each folded its own.
        held = [
            int(node.query(f"SELECT count() FROM {events.database}.traffic_rollups_local FINAL"))
            for node in clickhouse_cluster.nodes
        ]
        assert all(held) and sum(held) == len(_expected(_appended(1, 400) + _appended(2, 150)))
    finally:
        events.close()


@pytest.mark.slow
def test_folding_the_main_rollup_keeps_its_figures_on_a_replicated_cluster() -> None:
    """Both replicas of a shard fold the same rows; their replicated table keeps them once."""
    with replicated_servers() as servers:
        events = EventsClient.from_url(servers.events_url("fold"))

        def settle() -> None:
            for node in servers.nodes:
                node.query("SYSTEM SYNC REPLICA fold.traffic_rollups_local")

        try:
            _fold_keeps_the_figures(events, settle)
        finally:
            events.close()
        held = {
            node.name: int(node.query("SELECT count() FROM fold.traffic_rollups_local FINAL"))
            for node in servers.nodes
        }
        assert held["ch1a"] == held["ch1b"] > 0 and held["ch2a"] == held["ch2b"] > 0


def _structure(events: EventsClient, database: str) -> dict[str, str]:
    """Each table's and view's CREATE statement as the server shows it, with the database's
    name taken out (18.16's system.tables has no sorting key or view query columns)."""
    names = events.query(
        f"SELECT name FROM system.tables WHERE database = '{database}' "
        "AND name != 'logharbor_migrations' ORDER BY name"
    )
    return {
        row["name"]: events.nodes[0]
        .execute(f"SHOW CREATE TABLE {database}.{row['name']} FORMAT TabSeparatedRaw")
        .replace(database + ".", "DB.")
        .replace(f"'{database}'", "'DB'")
        .replace(f", {database}, ", ", DB, ")
        .replace(f"/{database}/", "/DB/")
        for row in names
    }


def _ddl_builds_what_upgrade_builds(events: EventsClient, cluster: str | None) -> None:
    upgraded = events.database
    assert events_schema.upgrade(events) == [m.version for m in events_schema.MIGRATIONS]
    from_ddl = upgraded + "_ddl"
    layout = events_schema.Layout(from_ddl, cluster)
    for node in events.nodes:
        node.execute(f"CREATE DATABASE IF NOT EXISTS {from_ddl}")
        for statement in events_schema.schema_ddl(layout):
            node.execute(statement)
    want = _structure(events, upgraded)
    got = _structure(events, from_ddl)
    assert got == want
    folding = ("traffic_rollups", "traffic_rollups_input", "traffic_rollups_fold")
    assert {layout.local(name) for name in folding} <= set(got)


def test_the_printed_ddl_builds_what_upgrade_builds_on_chdb(chdb_events: EventsClient) -> None:
    _ddl_builds_what_upgrade_builds(chdb_events, None)


@pytest.mark.slow
def test_the_printed_ddl_builds_what_upgrade_builds_on_a_cluster(clickhouse_cluster: Any) -> None:
    events = EventsClient.from_url(clickhouse_cluster.events_url(f"ddl{next(_names)}"))
    try:
        _ddl_builds_what_upgrade_builds(events, "logharbor")
    finally:
        events.close()


def test_events_ddl_prints_statements_that_a_node_runs(chdb_events: EventsClient) -> None:
    printed = CliRunner().invoke(app, ["events", "ddl", "--database", chdb_events.database])
    assert printed.exit_code == 0, printed.output
    statements = [s.strip() for s in printed.output.split(";\n") if s.strip()]
    for statement in statements:
        chdb_events.command(statement)
    assert {row["name"] for row in chdb_events.query("SHOW TABLES")} >= {
        "http_traffic",
        "traffic_rollups",
        "traffic_rollups_input",
        "traffic_rollups_fold",
    }
    assert events_schema.upgrade(chdb_events) == []  # recorded as migrated


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["--replicated"], "--replicated needs --cluster"),
        (["--database", "logs; DROP DATABASE x"], "not a plain ClickHouse identifier"),
        (["--cluster", "a b"], "not a plain ClickHouse identifier"),
    ],
)
def test_events_ddl_refuses_what_it_cannot_print(arguments: list[str], reason: str) -> None:
    refused = CliRunner().invoke(app, ["events", "ddl", *arguments])
    assert refused.exit_code == 2
    assert reason in refused.output
    assert "CREATE" not in refused.output
