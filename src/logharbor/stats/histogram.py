"""Log-scale latency histogram: 16 buckets per doubling, so ~4.4 % wide.

A bucket index is ``floor(16 * log2(ms))``. A percentile is answered with the geometric middle of
the bucket that holds its rank, clamped to the observed min/max, so it is within 2^(1/32) - 1 ≈
2.2 % of the exact value. Fixed, data-independent bucket edges are what make histograms from
different minutes, hours, workers and hosts addable with a plain ``count = count + excluded.count``
(a t-digest or DDSketch with adaptive state could not be merged by the database).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

PER_DOUBLING = 16
MIN_MS = 0.001  # anything faster (or zero) counts as 1 µs
MAX_RELATIVE_ERROR = 2 ** (1 / (2 * PER_DOUBLING)) - 1


def bucket_of(ms: float) -> int:
    if not ms > MIN_MS:  # also catches NaN
        ms = MIN_MS
    return math.floor(PER_DOUBLING * math.log2(ms))


def bucket_middle(index: int) -> float:
    return float(2 ** ((index + 0.5) / PER_DOUBLING))


def percentiles(
    counts: Mapping[int, int],
    quantiles: Iterable[float],
    *,
    lowest: float | None = None,
    highest: float | None = None,
) -> list[float | None]:
    """Nearest-rank percentiles (q in 0..1) from bucket counts; None when there is no data."""
    items = sorted((b, n) for b, n in counts.items() if n > 0)
    total = sum(n for _, n in items)
    wanted = list(quantiles)
    if total == 0:
        return [None for _ in wanted]
    answers: list[float | None] = []
    for q in wanted:
        rank = max(1, math.ceil(q * total))
        seen = 0
        value = bucket_middle(items[-1][0])
        for index, n in items:
            seen += n
            if seen >= rank:
                value = bucket_middle(index)
                break
        if lowest is not None:
            value = max(value, lowest)
        if highest is not None:
            value = min(value, highest)
        answers.append(value)
    return answers
