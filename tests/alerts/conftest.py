"""Alerts tests deliver to a receiver on 127.0.0.1 and retry quickly."""

from __future__ import annotations

import pytest

from fixtures.webhooks import FAST
from logharbor.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Delivery that reaches a receiver on 127.0.0.1 and retries quickly."""
    return settings.model_copy(update=FAST)
