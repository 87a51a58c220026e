"""Identifiers: UUIDv7 everywhere in storage; PromptCrafter shows them as ``prefix<digits>``.

The PromptCrafter API documents ids such as ``prompt104``. We keep that shape but put the UUIDv7's
128-bit integer behind the prefix: time-ordered, unguessable, and convertible both ways without a
second column.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_MAX_UUID_INT = (1 << 128) - 1


class _UUID7Source:
    """UUIDv7 text, strictly increasing within a process (RFC 9562, method 1).

    48 bits of Unix milliseconds, then a 12-bit counter that starts at a random value below
    2048 each millisecond (so a thousand ids per millisecond still fit), then 62 random bits.
    Only when the counter runs out does the clock field step ahead by one millisecond: unlike a
    generator that bumps the timestamp on every id of a busy millisecond, ids do not drift ahead
    of the real time under a sustained rate of thousands per second.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._counter = 0
        # Entropy fetched 512 ids at a time: one system call per id showed in ingest profiles.
        self._entropy = b""
        self._taken = 0

    def forget_entropy(self) -> None:
        self._lock = threading.Lock()
        self._entropy, self._taken = b"", 0

    def __call__(self) -> str:
        with self._lock:
            if self._taken >= len(self._entropy):
                self._entropy, self._taken = os.urandom(4096), 0
            random_bits = int.from_bytes(self._entropy[self._taken : self._taken + 8]) >> 2
            self._taken += 8
            value = self._next_value(time.time_ns() // 1_000_000, random_bits)
        return _text(value)

    def many(self, count: int) -> list[str]:
        """``count`` ids for one batch of rows: one lock and one clock reading for all."""
        entropy = os.urandom(8 * count)
        with self._lock:
            ms = time.time_ns() // 1_000_000
            values = [
                self._next_value(ms, int.from_bytes(entropy[start : start + 8]) >> 2)
                for start in range(0, 8 * count, 8)
            ]
        return [_text(value) for value in values]

    def _next_value(self, ms: int, random_bits: int) -> int:
        """The next id's 128 bits; the caller holds the lock."""
        if ms > self._ms:
            self._ms = ms
            self._counter = random_bits >> 51  # 11 bits: the other half stays headroom
        elif self._counter < 0xFFF:
            self._counter += 1
        else:
            self._ms += 1
            self._counter = 0
        return (self._ms << 80) | (0x7000 | self._counter) << 64 | 1 << 63 | random_bits


def _text(value: int) -> str:
    digits = value.to_bytes(16).hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


new_id = _UUID7Source()
new_ids = new_id.many
# A forked worker must not hand out the random bits its parent already buffered.
os.register_at_fork(after_in_child=new_id.forget_entropy)


def is_uuid(value: object) -> bool:
    return isinstance(value, str) and bool(_UUID_RE.match(value))


def to_prefixed(prefix: str, value: str) -> str:
    return f"{prefix}{uuid.UUID(value).int}"


def from_prefixed(prefix: str, value: object) -> str | None:
    """The UUID behind ``prefix<digits>``, or None when the value is not of that shape."""
    if not isinstance(value, str) or not value.startswith(prefix):
        return None
    digits = value[len(prefix) :]
    if not digits.isascii() or not digits.isdigit() or len(digits) > 39:
        return None
    number = int(digits)
    if number > _MAX_UUID_INT:
        return None
    return str(uuid.UUID(int=number))
