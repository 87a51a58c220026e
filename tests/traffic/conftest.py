"""Fixtures of the traffic-log API tests: a user with a traffic source, and row counting."""

from __future__ import annotations

import sys
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
