from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from logharbor.common.ids import from_prefixed, is_uuid, new_id, new_ids, to_prefixed
from logharbor.common.timestamps import iso, parse_iso, utcnow


def test_ids_are_uuid7_and_time_ordered() -> None:
    first, second = new_id(), new_id()
    assert is_uuid(first) and first[14] == "7"
    assert first < second


def test_prefixed_ids_round_trip_and_reject_other_shapes() -> None:
    value = new_id()
    shown = to_prefixed("prompt", value)
    assert shown.startswith("prompt") and shown[6:].isdigit()
    assert from_prefixed("prompt", shown) == value
    for bad in ("invalid_prompt_id", "log123", "prompt", "prompt12a", "prompt" + "9" * 40, None, 5):
        assert from_prefixed("prompt", bad) is None


def test_timestamps_have_milliseconds_and_z() -> None:
    assert iso(datetime(2025, 7, 10, 16, 0, 5, tzinfo=UTC)) == "2025-07-10T16:00:05.000Z"
    # Other offsets are converted, naive values taken as UTC, sub-millisecond digits dropped.
    plus_two = timezone(timedelta(hours=2))
    assert (
        iso(datetime(2025, 7, 10, 18, 0, 5, 123999, tzinfo=plus_two)) == "2025-07-10T16:00:05.123Z"
    )
    assert iso(datetime(2025, 7, 10, 16, 0, 5, 7000)) == "2025-07-10T16:00:05.007Z"
    now = utcnow()
    assert now.microsecond % 1000 == 0
    assert parse_iso(iso(now)) == now
    assert parse_iso("2025-07-10T18:00:05+02:00") == datetime(2025, 7, 10, 16, 0, 5, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_iso("yesterday")


def test_ids_stay_ordered_and_on_the_clock_under_a_burst() -> None:
    # Many ids per millisecond: each is unique and larger than the last, and the time field is
    # never ahead of the clock (a generator that bumps it per id would run seconds ahead here).
    import time
    import uuid

    burst = [new_id() for _ in range(50_000)]
    now_ms = time.time_ns() // 1_000_000
    assert burst == sorted(burst) and len(set(burst)) == len(burst)
    assert uuid.UUID(burst[-1]).int >> 80 <= now_ms + 1
    assert all(uuid.UUID(value).version == 7 for value in burst[::5000])


def test_ids_of_a_batch_interleave_in_order_with_single_ids() -> None:
    import uuid

    ids = [new_id(), *new_ids(3000), new_id(), *new_ids(1), new_id()]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(is_uuid(value) and uuid.UUID(value).version == 7 for value in ids)
    assert all(uuid.UUID(value).variant == uuid.RFC_4122 for value in ids)
    assert new_ids(0) == []


def test_a_forked_child_does_not_reuse_the_parents_buffered_randomness() -> None:
    import os

    new_id()  # the parent has entropy buffered now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only reports
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    parent = new_id()
    assert child[19:] != parent[19:]  # the 62 random bits (and the counter) differ
