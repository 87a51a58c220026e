"""HS256 JWTs for users, and opaque write-only ingest keys for traffic sources."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import jwt

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
    return subject


def new_ingest_key() -> tuple[str, str]:
    """A fresh key and the hash we store; the key itself is shown once and never kept."""
    key = INGEST_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_ingest_key(key)


def hash_ingest_key(key: str) -> str:
    # The key has 256 bits of entropy, so a fast hash is enough and keeps lookups cheap.
    return hashlib.sha256(key.encode()).hexdigest()


def is_ingest_key(token: str) -> bool:
    return token.startswith(INGEST_KEY_PREFIX)
