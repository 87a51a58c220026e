"""Statistics tests read the rollups of thousands of random records, stored raw and published to
the ingest hooks as every ingest path does."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fixtures.records import RANDOM_START, Layout, add_layout, store_random_traffic
from fixtures.sources import Source
from logharbor.db.engine import Database


@pytest.fixture
def random_traffic(db: Database, source: Source) -> Layout:
    """3,000 random records in ``source`` over 9 days from ``RANDOM_START``; where they went."""
    layout = add_layout(db, source.id)
    store_random_traffic(db, source.id, layout, 3000, RANDOM_START, timedelta(days=9))
    return layout
