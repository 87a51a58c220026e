from __future__ import annotations

from datetime import UTC, datetime

import pytest

from logharbor.common.ids import from_prefixed, is_uuid, new_id, to_prefixed
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
    now = utcnow()
    assert now.microsecond % 1000 == 0
    assert parse_iso(iso(now)) == now
    assert parse_iso("2025-07-10T18:00:05+02:00") == datetime(2025, 7, 10, 16, 0, 5, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_iso("yesterday")
