"""`logharbor import arkyn`: a real PostgreSQL database with Arkyn's schema (as its migration
history built it, leftover User and Exception tables included), holding shapes its API let in."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from fixtures.postgres import Cluster
from logharbor.cli import app as cli
from logharbor.collector.redaction import MASK
from logharbor.db import tables
from logharbor.db.engine import Database, make_engine
from logharbor.moving_in import arkyn
from logharbor.moving_in.common import Owners
from logharbor.traffic.normalize import IngestConfig

runner = CliRunner()
_names = itertools.count()

SCHEMA = """
CREATE TYPE "Method" AS ENUM ('post', 'put', 'patch', 'delete', 'get');
CREATE TYPE "Level" AS ENUM ('info', 'fatal', 'warning');
CREATE TYPE "WebhookType" AS ENUM ('discord');
CREATE TYPE "SharePermission" AS ENUM ('READ_ONLY');
CREATE TYPE "Protocol" AS ENUM ('http', 'https');
CREATE TABLE "User" (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
  utc INTEGER NOT NULL, password TEXT NOT NULL, "createdAt" TIMESTAMP(3) NOT NULL,
  "updatedAt" TIMESTAMP(3) NOT NULL);
CREATE TABLE "TrafficSource" (id TEXT PRIMARY KEY, name TEXT NOT NULL,
  "trafficDomain" TEXT NOT NULL, "userId" TEXT NOT NULL REFERENCES "User"(id)
  ON DELETE RESTRICT ON UPDATE CASCADE, "createdAt" TIMESTAMP(3) NOT NULL,
  "updatedAt" TIMESTAMP(3) NOT NULL);
CREATE TABLE "Webhook" (id TEXT PRIMARY KEY, type "WebhookType" NOT NULL, level "Level" NOT NULL,
  value TEXT NOT NULL, "createdAt" TIMESTAMP(3) NOT NULL, "updatedAt" TIMESTAMP(3) NOT NULL,
  "trafficSourceId" TEXT NOT NULL REFERENCES "TrafficSource"(id));
CREATE TABLE "TrafficSourceShare" (id TEXT PRIMARY KEY,
  "ownerId" TEXT NOT NULL REFERENCES "User"(id), "sharedWithId" TEXT NOT NULL REFERENCES "User"(id),
  "trafficSourceId" TEXT NOT NULL REFERENCES "TrafficSource"(id),
  permission "SharePermission" NOT NULL, "createdAt" TIMESTAMP(3) NOT NULL,
  "updatedAt" TIMESTAMP(3) NOT NULL, UNIQUE ("ownerId", "sharedWithId", "trafficSourceId"));
CREATE INDEX "TrafficSourceShare_sharedWithId_idx" ON "TrafficSourceShare"("sharedWithId");
CREATE TABLE "Domain" (id TEXT PRIMARY KEY, value TEXT NOT NULL, protocol "Protocol" NOT NULL,
  "trafficSourceId" TEXT NOT NULL REFERENCES "TrafficSource"(id),
  "createdAt" TIMESTAMP(3) NOT NULL);
CREATE TABLE "Pathname" (id TEXT PRIMARY KEY, value TEXT NOT NULL,
  "trafficSourceId" TEXT NOT NULL REFERENCES "TrafficSource"(id),
  "domainId" TEXT NOT NULL REFERENCES "Domain"(id), "createdAt" TIMESTAMP(3) NOT NULL);
CREATE TABLE "Request" (id TEXT PRIMARY KEY, headers TEXT NOT NULL, "bodyPreview" TEXT,
  "bodyUrl" TEXT, "queryParams" TEXT, "createdAt" TIMESTAMP(3) NOT NULL);
CREATE TABLE "Response" (id TEXT PRIMARY KEY, headers TEXT NOT NULL, "bodyPreview" TEXT,
  "bodyUrl" TEXT, "createdAt" TIMESTAMP(3) NOT NULL);
CREATE TABLE "HttpTraffic" (id TEXT PRIMARY KEY, status INTEGER NOT NULL, method "Method" NOT NULL,
  level "Level" NOT NULL, "trafficUserId" TEXT,
  "trafficSourceId" TEXT NOT NULL REFERENCES "TrafficSource"(id), "elapsedTime" INTEGER NOT NULL,
  "domainId" TEXT NOT NULL REFERENCES "Domain"(id),
  "pathnameId" TEXT NOT NULL REFERENCES "Pathname"(id),
  "requestId" TEXT NOT NULL UNIQUE REFERENCES "Request"(id),
  "responseId" TEXT NOT NULL UNIQUE REFERENCES "Response"(id), "createdAt" TIMESTAMP(3) NOT NULL);
CREATE TABLE "CorePathname" (id TEXT PRIMARY KEY, value TEXT NOT NULL,
  "trafficSourceId" TEXT NOT NULL REFERENCES "TrafficSource"(id),
  "createdAt" TIMESTAMP(3) NOT NULL);
CREATE TABLE "CoreLog" (id TEXT PRIMARY KEY, status INTEGER NOT NULL, method "Method" NOT NULL,
  level "Level" NOT NULL, "elapsedTime" INTEGER NOT NULL, "trafficUserId" TEXT,
  "corePathnameId" TEXT NOT NULL REFERENCES "CorePathname"(id),
  "trafficSourceId" TEXT NOT NULL REFERENCES "TrafficSource"(id),
  "requestId" TEXT NOT NULL UNIQUE REFERENCES "Request"(id),
  "responseId" TEXT NOT NULL UNIQUE REFERENCES "Response"(id), "createdAt" TIMESTAMP(3) NOT NULL);
CREATE TABLE "Exception" (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, message TEXT NOT NULL,
  metadata TEXT NOT NULL, "firstSeenAt" TIMESTAMP(3) NOT NULL, "lastSeenAt" TIMESTAMP(3) NOT NULL,
  "trafficSourceId" TEXT NOT NULL REFERENCES "TrafficSource"(id),
  "corePathnameId" TEXT NOT NULL REFERENCES "CorePathname"(id),
  "createdAt" TIMESTAMP(3) NOT NULL, "updatedAt" TIMESTAMP(3) NOT NULL);
CREATE TABLE "ExceptionOccurrence" (id TEXT PRIMARY KEY,
  "exceptionId" TEXT NOT NULL REFERENCES "Exception"(id), "createdAt" TIMESTAMP(3) NOT NULL);
"""


def uid(n: int) -> str:
    """A UUIDv7-looking id, in creation order as Arkyn's are."""
    return f"0198a000-0000-7000-8000-{n:012d}"


S1, S2 = uid(1), uid(2)
T0 = "2025-07-10 16:00:05.123"


def _fill(conn: psycopg.Connection[Any], extra_traffic: int = 0) -> None:
    x = conn.execute
    for user, email in (("u1", "Alice@Example.com"), ("u2", "bob@example.com")):
        x(
            """INSERT INTO "User" VALUES (%s, %s, %s, 0, 'bcrypt', %s, %s)""",
            (user, email, email.split("@")[0], T0, T0),
        )
    x(
        """INSERT INTO "TrafficSource" VALUES (%s, 'Shop', 'https://shop.io', 'u1', %s, %s)""",
        (S1, T0, T0),
    )
    x(
        """INSERT INTO "TrafficSource" VALUES (%s, 'Api', 'https://api.b.io', 'u2', %s, %s)""",
        (S2, T0, T0),
    )
    x(
        """INSERT INTO "TrafficSourceShare" VALUES (%s, 'u1', 'u2', %s, 'READ_ONLY', %s, %s)""",
        (uid(3), S1, T0, T0),
    )
    # Shared with its own owner: Arkyn's table had no check.
    x(
        """INSERT INTO "TrafficSourceShare" VALUES (%s, 'u1', 'u2', %s, 'READ_ONLY', %s, %s)""",
        (uid(4), S2, T0, T0),
    )
    domains = [
        (uid(10), "https://shop.io", "https", S1),
        (uid(11), "https://shop.io/", "https", S1),  # Arkyn bug 6: trailing slash duplicates
        (uid(12), "https://api.b.io", "https", S2),
        (uid(13), "not a url", "https", S1),
    ]
    for row in domains:
        x("""INSERT INTO "Domain" VALUES (%s, %s, %s, %s, %s)""", (*row, T0))
    pathnames = [
        (uid(20), "/cart", S1, uid(10)),
        (uid(21), "/users/42", S1, uid(11)),
        (uid(22), "/x", S1, uid(12)),  # bug 7: another tenant's domain
        (uid(23), "no-slash", S2, uid(12)),
    ]
    for row in pathnames:
        x("""INSERT INTO "Pathname" VALUES (%s, %s, %s, %s, %s)""", (*row, T0))
    headers = json.dumps({"authorization": "Bearer abc", "accept": "*/*"})
    body = json.dumps({"password": "hunter2", "item": 1})
    for n in range(30, 50):
        x(
            """INSERT INTO "Request" VALUES (%s, %s, %s, 'files/stub.txt', %s, %s)""",
            (uid(n), headers, body, '{"q":"1"}', T0),
        )
        x(
            """INSERT INTO "Response" VALUES (%s, %s, %s, 'files/stub.txt', %s)""",
            (uid(n), '{"set-cookie":"sid=1"}', '{"error":"boom 17"}', T0),
        )
    traffic = [  # id, status, method, level, source, domain, pathname, request/response
        (uid(60), 200, "get", "info", S1, uid(10), uid(20), uid(30), "2025-07-10 16:00:05.123"),
        (uid(61), 500, "post", "fatal", S1, uid(11), uid(21), uid(31), "2025-07-10 16:01:00.000"),
        (uid(62), 500, "post", "fatal", S1, uid(11), uid(21), uid(32), "2025-07-10 16:02:00.000"),
        (uid(63), 404, "get", "warning", S1, uid(12), uid(22), uid(33), "2025-07-10 16:03:00.000"),
        (uid(64), 200, "get", "info", S2, uid(12), uid(23), uid(34), "2025-07-10 16:04:00.000"),
    ]
    for n in range(extra_traffic):
        traffic.append((uid(100 + n), 200, "get", "info", S1, uid(10), uid(20), None, T0))
    for tid, status, method, level, source, domain, pathname, payload, at in traffic:
        if payload is None:
            payload = uid(5000 + int(tid[-6:]))
            x("""INSERT INTO "Request" VALUES (%s, '{}', NULL, NULL, NULL, %s)""", (payload, T0))
            x("""INSERT INTO "Response" VALUES (%s, '{}', NULL, NULL, %s)""", (payload, T0))
        x(
            """INSERT INTO "HttpTraffic" VALUES (%s, %s, %s, %s, 'customer-7', %s, 12, %s, %s,
               %s, %s, %s)""",
            (tid, status, method, level, source, domain, pathname, payload, payload, at),
        )
    x("""INSERT INTO "CorePathname" VALUES (%s, '/users/:id', %s, %s)""", (uid(70), S1, T0))
    x(
        """INSERT INTO "CoreLog" VALUES (%s, 503, 'get', 'fatal', 40, NULL, %s, %s, %s, %s, %s)""",
        (uid(71), uid(70), S1, uid(40), uid(40), "2025-07-11 09:00:00.000"),
    )
    x(
        """INSERT INTO "Webhook" VALUES (%s, 'discord', 'fatal', %s, %s, %s, %s)""",
        (uid(80), "1393844236054433832", T0, T0, S1),
    )
    x(
        """INSERT INTO "Webhook" VALUES (%s, 'discord', 'warning', %s, %s, %s, %s)""",
        (uid(81), "https://hooks.slack.com/services/T0/B0/X", T0, T0, S1),
    )
    # uid(45) .. uid(49): requests and responses no record links (failed composes).


@pytest.fixture
def arkyn_url(pg_cluster: Cluster) -> Iterator[str]:
    name = f"arkyn_{next(_names)}"
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield pg_cluster.url(name)
    finally:
        with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _load(url: str, extra_traffic: int = 0) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(SCHEMA)
        _fill(conn, extra_traffic)


def _state(database_url: str) -> dict[str, Any]:
    engine = make_engine(database_url)
    t = tables
    try:
        with engine.connect() as conn:
            counts = {
                name: conn.execute(select(func.count()).select_from(getattr(t, name))).scalar_one()
                for name in (
                    "traffic_sources",
                    "traffic_source_shares",
                    "domains",
                    "pathnames",
                    "requests",
                    "responses",
                    "http_traffic",
                    "core_pathnames",
                    "core_logs",
                    "webhooks",
                    "exceptions",
                    "webhook_outbox",
                )
            }
            rolled = conn.execute(
                select(func.sum(t.traffic_rollups.c.count)).where(
                    t.traffic_rollups.c.resolution == 60
                )
            ).scalar_one()
            occurrences = conn.execute(select(func.sum(t.exceptions.c.count))).scalar_one()
    finally:
        engine.dispose()
    return {**counts, "rolled up": rolled, "occurrences": occurrences}


def _row(database_url: str, table: Any, row_id: str) -> Any:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(table).where(table.c.id == row_id)).mappings().one()
    finally:
        engine.dispose()


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LOGHARBOR_DATABASE_URL", database_url)
    monkeypatch.setenv("LOGHARBOR_DATA_DIR", str(tmp_path / "data"))
    return database_url


def _squeezed(text: str) -> str:
    return " ".join(text.split())


def test_an_arkyn_database_moves_in_once(env: str, arkyn_url: str) -> None:
    _load(arkyn_url)
    result = runner.invoke(cli, ["import", "arkyn", "--from", arkyn_url, "--create-users"])
    assert result.exit_code == 0, result.output
    out = _squeezed(result.output)
    assert "traffic sources 2 imported" in out
    assert "http traffic 4 imported, 0 skipped (already imported), 1 refused" in out
    assert "Pathname must start with /" in out
    assert "maps to the source's own owner" in out
    assert "Discord channel 1393844236054433832 was reached through Arkyn's bot" in out
    assert "unlinked requests" in out and "alice@example.com" in out
    assert "\x1b[" not in out
    state = _state(env)
    assert state == {
        "traffic_sources": 2,
        "traffic_source_shares": 1,
        # shop.io (its trailing-slash twin merged) and api.b.io twice: its own source's, and
        # the one S1's records used across tenants, now in S1.
        "domains": 3,
        "pathnames": 3,
        "requests": 5,
        "responses": 5,
        "http_traffic": 4,
        "core_pathnames": 1,
        "core_logs": 1,
        "webhooks": 1,
        "exceptions": 2,
        "webhook_outbox": 0,  # history notifies nobody
        "rolled up": 4,
        "occurrences": 3,
    }
    # Ids, times and string-encoded payloads are kept; secrets masked on the way in.
    record = _row(env, tables.http_traffic, uid(60))
    assert (record["method"], record["level"], record["elapsed_time"]) == ("GET", "INFO", 12.0)
    assert record["created_at"] == datetime.fromisoformat("2025-07-10T16:00:05.123+00:00")
    assert record["request_id"] == uid(30) and record["domain_id"] == uid(10)
    request = _row(env, tables.requests, uid(30))
    assert isinstance(request["headers"], str)  # JSON text, as Arkyn stored it
    assert json.loads(request["headers"]) == {"authorization": MASK, "accept": "*/*"}
    assert json.loads(json.loads(request["body"])) == {"password": MASK, "item": 1}
    assert request["query_params"] == '{"q":"1"}'
    merged = _row(env, tables.http_traffic, uid(61))
    assert merged["domain_id"] == uid(10)  # the trailing-slash twin became shop.io
    crossed = _row(env, tables.http_traffic, uid(63))
    assert crossed["domain_id"] != uid(12)
    assert _row(env, tables.domains, crossed["domain_id"])["traffic_source_id"] == S1
    hook = _row(env, tables.webhooks, uid(81))
    assert (hook["level"], hook["status_min"], hook["status_max"]) == ("WARNING", 400, 499)
    assert _row(env, tables.core_logs, uid(71))["request_id"] == uid(40)

    again = runner.invoke(cli, ["import", "arkyn", "--from", arkyn_url, "--create-users"])
    assert again.exit_code == 0, again.output
    assert "http traffic 0 imported, 4 skipped" in _squeezed(again.output)
    assert _state(env) == state


def test_an_interrupted_import_finishes_on_the_next_run(env: str, arkyn_url: str) -> None:
    _load(arkyn_url, extra_traffic=25)
    source = arkyn.connect(arkyn_url)
    db = Database(make_engine(env))
    config = IngestConfig(frozenset({"authorization", "password", "set-cookie"}), 1 << 20, 200)
    done = [0]

    def interrupt(count: int) -> None:
        done[0] += count
        if done[0] > 25:  # part-way through the traffic pages
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            arkyn.import_database(
                db, source, Owners(create=True), config, advance=interrupt, page_size=4
            )
        partial = _state(env)
        assert 0 < partial["http_traffic"] < 29
        assert partial["rolled up"] == partial["http_traffic"]  # whole pages only
        summary = arkyn.import_database(db, source, Owners(create=True), config, page_size=4)
    finally:
        db.dispose()
        source.dispose()
    assert summary.tally("http traffic").skipped == partial["http_traffic"]
    final = _state(env)
    assert final["http_traffic"] == final["rolled up"] == 29
    assert final["occurrences"] == 3


def test_owners_must_map_and_a_wrong_source_is_refused(
    env: str, arkyn_url: str, tmp_path: Path
) -> None:
    _load(arkyn_url)
    unmapped = runner.invoke(cli, ["import", "arkyn", "--from", arkyn_url])
    assert unmapped.exit_code == 0, unmapped.output
    assert "no LogHarbor user alice@example.com (use --create-users" in unmapped.output
    assert _state(env)["http_traffic"] == 0

    users_map = tmp_path / "users.csv"
    users_map.write_text("u1,ops@example.com\nu2,ops@example.com\n")
    mapped = runner.invoke(
        cli,
        ["import", "arkyn", "--from", arkyn_url, "--users-map", str(users_map), "--create-users"],
    )
    assert mapped.exit_code == 0, mapped.output
    assert "ops@example.com" in mapped.output and "alice" not in mapped.output

    bad_map = tmp_path / "bad.csv"
    bad_map.write_text("u1,not-an-email\n")
    refused = runner.invoke(
        cli, ["import", "arkyn", "--from", arkyn_url, "--users-map", str(bad_map)]
    )
    assert refused.exit_code == 1 and "is not an email address" in refused.output

    with psycopg.connect(arkyn_url, autocommit=True) as conn:
        conn.execute('DROP TABLE "Webhook"')
    wrong = runner.invoke(cli, ["import", "arkyn", "--from", arkyn_url, "--owner", "a@b.co"])
    assert wrong.exit_code == 1 and "not an Arkyn Logs database: no table Webhook" in wrong.output
    nowhere = runner.invoke(
        cli, ["import", "arkyn", "--from", "postgresql://nobody@127.0.0.1:1/x", "--owner", "a@b.co"]
    )
    assert nowhere.exit_code == 1 and "cannot read the Arkyn database" in nowhere.output
