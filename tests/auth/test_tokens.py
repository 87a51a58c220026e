"""A user token's signature is checked once per process; its expiry on every use."""

from __future__ import annotations

import time

import jwt
import pytest

from logharbor.auth.tokens import VerifiedTokens, issue_token
from logharbor.common.errors import Unauthorized

SECRET = "a-secret-long-enough-for-hs256-signatures"


def test_a_remembered_token_still_expires() -> None:
    now = [time.time()]
    tokens = VerifiedTokens(SECRET, clock=lambda: now[0])
    token = issue_token("user-1", SECRET, ttl_seconds=60)
    assert tokens.user_id(token) == "user-1"
    now[0] += 30
    assert tokens.user_id(token) == "user-1"  # from memory
    now[0] += 31
    with pytest.raises(Unauthorized):
        tokens.user_id(token)


def test_bad_tokens_are_never_remembered_as_good() -> None:
    tokens = VerifiedTokens(SECRET, max_entries=2)
    forged = issue_token("user-1", "another-secret-long-enough-for-hs256", ttl_seconds=60)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            tokens.user_id(forged)
    expired = jwt.encode(
        {"sub": "u", "iss": "logharbor", "iat": 1, "exp": 2}, SECRET, algorithm="HS256"
    )
    with pytest.raises(Unauthorized):
        tokens.user_id(expired)
    # The memory is bounded: more tokens than it holds still verify.
    for n in range(5):
        assert tokens.user_id(issue_token(f"user-{n}", SECRET, ttl_seconds=60)) == f"user-{n}"


def test_a_full_memory_forgets_the_least_recently_used_token_only() -> None:
    now = [time.time()]
    tokens = VerifiedTokens(SECRET, max_entries=2, clock=lambda: now[0])
    hot, cold, new = (issue_token(f"user-{n}", SECRET, ttl_seconds=60) for n in "hcn")
    tokens.user_id(hot)
    tokens.user_id(cold)
    tokens.user_id(hot)
    tokens.user_id(new)  # full: ``cold`` makes room
    now[0] += 61
    # A remembered token is judged by the (advanced) clock, a forgotten one verified anew
    # against the real one: so ``hot`` was kept and ``cold`` forgotten.
    with pytest.raises(Unauthorized):
        tokens.user_id(hot)
    assert tokens.user_id(cold) == "user-c"
