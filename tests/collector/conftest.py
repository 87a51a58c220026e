from __future__ import annotations

from collections.abc import Iterator

import pytest

from collector.harness import MemoryTransport, StandInServer, running_stand_in
from logharbor.collector import Collector


@pytest.fixture
def stand_in() -> Iterator[StandInServer]:
    with running_stand_in() as state:
        yield state


@pytest.fixture
def memory() -> Iterator[tuple[Collector, MemoryTransport]]:
    """A collector whose transport keeps the wire records in memory."""
    transport = MemoryTransport()
    collector = Collector(transport=transport, flush_interval=0.05)
    yield collector, transport
    collector.close()
