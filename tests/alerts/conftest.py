"""Alerts fixtures: a real receiver, fast delivery settings, a source owned by the test user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from alerts.support import FAST, add_source
from logharbor.db.engine import Database
from logharbor.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Delivery that reaches a receiver on 127.0.0.1 and retries quickly."""
    return settings.model_copy(update=FAST)


@pytest.fixture
def db(client: Any) -> Database:
    database: Database = client.app.state.db
    return database


@pytest.fixture
def source(db: Database, user: Any) -> str:
    return add_source(db, user.id)


@pytest.fixture
def make_webhook(client: Any, user: Any, source: str) -> Callable[..., dict[str, Any]]:
    def make(url: str, **fields: Any) -> dict[str, Any]:
        body = {"value": url, "level": "warning", "type": "webhook", **fields}
        response = client.post(f"/webhooks/{source}", json=body, headers=user.headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make
