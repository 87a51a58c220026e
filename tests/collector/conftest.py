from __future__ import annotations

from collections.abc import Iterator

import pytest

from collector.harness import MemoryTransport, Receiver, running_receiver
from logharbor.collector import Collector


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as state:
        yield state


@pytest.fixture
def memory() -> Iterator[tuple[Collector, MemoryTransport]]:
    """A collector whose transport keeps the wire records in memory."""
    transport = MemoryTransport()
    collector = Collector(transport=transport, flush_interval=0.05)
    yield collector, transport
    collector.close()
