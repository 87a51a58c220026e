"""What a model's tokens cost, and what a call cost.

Defaults ship here for common models (US dollars per million tokens, the providers' list prices
when this was written); a user's own prices (``model_prices``) win over them. A model matches
its exact name first, then the longest priced name it starts with followed by ``-`` (so
``gpt-4o-2024-08-06`` is priced as ``gpt-4o``, and ``gpt-4o-mini-2024-07-18`` as
``gpt-4o-mini``). Cost is computed once, as a call is stored, with the prices of that moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Price:
    input_per_million: float
    output_per_million: float
    # None: cached input tokens cost what other input tokens cost.
    cached_input_per_million: float | None = None


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00, 0.125),
    "gpt-5-mini": Price(0.25, 2.00, 0.025),
    "gpt-5-nano": Price(0.05, 0.40, 0.005),
    "gpt-4.1": Price(2.00, 8.00, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "gpt-4o": Price(2.50, 10.00, 1.25),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "o1": Price(15.00, 60.00, 7.50),
    "o3": Price(2.00, 8.00, 0.50),
    "o3-mini": Price(1.10, 4.40, 0.55),
    "o4-mini": Price(1.10, 4.40, 0.275),
    "text-embedding-3-small": Price(0.02, 0.0),
    "text-embedding-3-large": Price(0.13, 0.0),
    "claude-opus-4": Price(15.00, 75.00, 1.50),
    "claude-sonnet-4": Price(3.00, 15.00, 0.30),
    "claude-3-7-sonnet": Price(3.00, 15.00, 0.30),
    "claude-3-5-sonnet": Price(3.00, 15.00, 0.30),
    "claude-3-5-haiku": Price(0.80, 4.00, 0.08),
    "claude-haiku-4-5": Price(1.00, 5.00, 0.10),
    "claude-3-haiku": Price(0.25, 1.25, 0.03),
    "claude-3-opus": Price(15.00, 75.00, 1.50),
}


def price_of(model: str, prices: Mapping[str, Price]) -> Price | None:
    """``prices``: the user's own over the defaults (see ``effective_prices``)."""
    name = model.strip().lower()
    found = prices.get(name)
    if found is not None:
        return found
    # A provider prefix (``openai/gpt-4o``, ``models/gemini-...``) does not change the price.
    if "/" in name:
        return price_of(name.rsplit("/", 1)[1], prices)
    best = ""
    for priced in prices:
        if len(priced) > len(best) and name.startswith(priced + "-"):
            best = priced
    return prices[best] if best else None


def effective_prices(own: Mapping[str, Price]) -> dict[str, Price]:
    return {**DEFAULT_PRICES, **{model.lower(): price for model, price in own.items()}}


def cost_of(
    price: Price | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cached_tokens: int | None,
) -> float | None:
    """US dollars; None when the model has no price or the call reported no tokens."""
    if price is None or (input_tokens is None and output_tokens is None):
        return None
    cached = min(cached_tokens or 0, input_tokens or 0)
    cached_rate = price.cached_input_per_million
    if cached_rate is None:
        cached_rate = price.input_per_million
    total = (
        ((input_tokens or 0) - cached) * price.input_per_million
        + cached * cached_rate
        + (output_tokens or 0) * price.output_per_million
    )
    return round(total / 1_000_000, 10)
