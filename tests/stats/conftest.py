"""Stats test data: a traffic source with random traffic, stored raw and published to the hooks."""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from helpers import AUser
from logharbor.app import ingest_subscribers
from logharbor.common.ids import new_id
from logharbor.common.timestamps import utcnow
from logharbor.db.tables import domains, http_traffic, pathnames, traffic_sources
from logharbor.ingest.events import TrafficEvent
from logharbor.traffic.normalize import level_for

sys.path.insert(0, str(Path(__file__).parent))
from stats_support import START


@dataclass
class Source:
    id: str
    domain_ids: dict[str, str] = field(default_factory=dict)
    pathname_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    # Pathnames that are route templates (no record has them as its own pathname).
    route_ids: dict[tuple[str, str], str] = field(default_factory=dict)


# Records on these pathnames come with a route template, as a collector sends it.
ROUTES = {"/users/42": "/users/{id}", "/users/7": "/users/{id}"}


def make_source(conn: Any, user_id: str, name: str = "shop") -> Source:
    now = utcnow()
    source = Source(id=new_id())
    conn.execute(
        insert(traffic_sources).values(
            id=source.id,
            user_id=user_id,
            name=name,
            traffic_domain="https://shop.example.com",
            created_at=now,
            updated_at=now,
        )
    )
    for domain in ("api.example.com", "cdn.example.com"):
        did = new_id()
        source.domain_ids[domain] = did
        conn.execute(
            insert(domains).values(
                id=did,
                traffic_source_id=source.id,
                value=domain,
                protocol="HTTPS",
                created_at=now,
            )
        )
        for path in ("/", "/orders", "/users/42", "/users/7", "/health", "/users/{id}"):
            pid = new_id()
            if path in ROUTES.values():
                source.route_ids[(domain, path)] = pid
            else:
                source.pathname_ids[(domain, path)] = pid
            conn.execute(
                insert(pathnames).values(
                    id=pid,
                    traffic_source_id=source.id,
                    domain_id=did,
                    value=path,
                    created_at=now,
                )
            )
    return source


def store_random_traffic(
    conn: Any, source: Source, n: int, start: datetime, span: timedelta, seed: int = 7
) -> None:
    """Raw rows plus ``publish`` in one transaction, as every ingest path does."""
    rng = random.Random(seed)
    keys = sorted(source.pathname_ids)
    rows = []
    events = []
    for _ in range(n):
        domain, path = rng.choice(keys)
        status = rng.choices([200, 201, 204, 301, 404, 422, 500, 503], [50, 9, 5, 3, 8, 3, 4, 2])[0]
        method = rng.choice(["GET", "GET", "POST", "DELETE"])
        elapsed = round(rng.lognormvariate(3.5, 1.0), 3)
        if rng.random() < 0.01:
            elapsed = 0.0
        created = start + timedelta(milliseconds=rng.randrange(int(span.total_seconds() * 1000)))
        created = created.astimezone(UTC)
        route = ROUTES.get(path)
        row = {
            "id": new_id(),
            "traffic_source_id": source.id,
            "domain_id": source.domain_ids[domain],
            "pathname_id": source.pathname_ids[(domain, path)],
            "status": status,
            "method": method,
            "level": level_for(status),
            "elapsed_time": elapsed,
            "traffic_user_id": None,
            "request_id": None,
            "response_id": None,
            "created_at": created,
            "route_pathname_id": source.route_ids[(domain, route)] if route else None,
        }
        rows.append(row)
        events.append(
            TrafficEvent(
                kind="traffic",
                id=row["id"],
                traffic_source_id=source.id,
                domain_id=row["domain_id"],
                domain=domain,
                pathname_id=row["pathname_id"],
                pathname=path,
                method=method,
                status=status,
                level=row["level"],
                elapsed_time=elapsed,
                traffic_user_id=None,
                created_at=created,
                route_pathname_id=row["route_pathname_id"],
            )
        )
    # Several transactions, like several requests, so that upserts add to existing rows.
    for i in range(0, n, 250):
        conn.execute(insert(http_traffic), rows[i : i + 250])
        ingest_subscribers()(conn, events[i : i + 250])


@pytest.fixture
def source(client: TestClient, user: AUser) -> Source:
    """3,000 random records over 9 days from START, owned by ``user``."""
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.write() as conn:
        src = make_source(conn, user.id)
        store_random_traffic(conn, src, 3000, START, timedelta(days=9))
    return src
