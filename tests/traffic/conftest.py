"""Fixtures of the traffic-log API tests: a user with a traffic source, and row counting."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from traffic_support import create_source

from helpers import AUser


@pytest.fixture
def source(client: TestClient, user: AUser) -> dict[str, Any]:
    return create_source(client, user)


@pytest.fixture
def rows(client: TestClient) -> Callable[[], dict[str, int]]:
    """Row counts of every traffic table, to prove a failed call wrote nothing."""
    from sqlalchemy import func, select

    from logharbor.db import tables

    names = (
        "domains",
        "pathnames",
        "requests",
        "responses",
        "http_traffic",
        "core_pathnames",
        "core_logs",
    )

    def count() -> dict[str, int]:
        db = client.app.state.db  # type: ignore[attr-defined]
        with db.read() as conn:
            return {
                name: conn.execute(
                    select(func.count()).select_from(getattr(tables, name))
                ).scalar_one()
                for name in names
            }

    return count
