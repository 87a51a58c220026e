"""Traffic records on ClickHouse's engine (chDB in this process), through the real app."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from fixtures.users import AUser


@pytest.fixture(params=["chdb"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def record(path: str = "/orders/42", status: int = 200, **extra: Any) -> dict[str, Any]:
    return {
        "domain": "https://api.example.com",
        "pathname": path,
        "method": "POST",
        "status": status,
        "elapsedTime": 12.5,
        "requestHeaders": {"content-type": "application/json"},
        "requestBody": {"item": "book", "password": "hunter2"},
        "responseHeaders": {"x-id": "1"},
        "responseBody": {"ok": True},
        **extra,
    }


def make_source(client: TestClient, user: AUser) -> str:
    response = client.post(
        "/traffic-source",
        json={"name": "shop", "trafficDomain": "api.example.com"},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
