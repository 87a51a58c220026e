"""HS256 JWTs for users, and opaque write-only ingest keys for traffic sources."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
from cachetools import LRUCache

from logharbor.common.errors import Unauthorized
from logharbor.common.timestamps import utcnow

ISSUER = "logharbor"
INGEST_KEY_PREFIX = "lhk_"


def issue_token(user_id: str, secret: str, ttl_seconds: int) -> str:
    now = utcnow()
    claims = {
        "sub": user_id,
        # Arkyn clients and tools read the user id from "id".
        "id": user_id,
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def user_id_from_token(token: str, secret: str) -> str:
    return str(_verified_claims(token, secret)["sub"])


def _verified_claims(token: str, secret: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized() from exc
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthorized()
    return claims


class VerifiedTokens:
    """Tokens whose signature was already checked, so each is verified once, not per request.

    A token's validity is a function of the token, the secret and the clock alone; the expiry
    is still compared on every use. Verifying HS256 costs more than the rest of an ingest
    request's authentication, and collectors send the same token thousands of times.
    """

    def __init__(
        self, secret: str, max_entries: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret
        self._clock = clock
        # LRU, not TTL: an entry never goes stale (its expiry is compared on every use), and a
        # token in use stays while ones seen once make room.
        self._subjects: LRUCache[str, tuple[str, int]] = LRUCache(max_entries)
        # A hit reorders the cache, so reads take the lock too.
        self._lock = threading.Lock()

    def user_id(self, token: str) -> str:
        with self._lock:
            known = self._subjects.get(token)
        if known is not None:
            subject, expires = known
            if self._clock() < expires:
                return subject
            raise Unauthorized()
        claims = _verified_claims(token, self._secret)
        with self._lock:
            self._subjects[token] = (claims["sub"], int(claims["exp"]))
        return str(claims["sub"])


def new_ingest_key() -> tuple[str, str]:
    """A fresh key and the hash we store; the key itself is shown once and never kept."""
    key = INGEST_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_ingest_key(key)


def hash_ingest_key(key: str) -> str:
    # The key has 256 bits of entropy, so a fast hash is enough and keeps lookups cheap.
    return hashlib.sha256(key.encode()).hexdigest()


def is_ingest_key(token: str) -> bool:
    return token.startswith(INGEST_KEY_PREFIX)
