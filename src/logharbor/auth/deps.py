"""Who is calling: the one Bearer-token dependency every route uses.

A token is either a user's JWT (works on every route of both families) or a traffic source's
ingest key (``lhk_...``; may only write traffic to that source). The principal is resolved once
per request, before the body is parsed (see ``common.routing``), and kept in the request state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any

from cachetools import TTLCache
from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from logharbor.auth import queries
from logharbor.auth.tokens import (
    hash_ingest_key,
    is_ingest_key,
    user_id_from_token,
)
from logharbor.common.errors import Forbidden, MissingToken, Unauthorized
from logharbor.db.engine import Database
from logharbor.settings import Settings

# Only for the OpenAPI docs ("Authorize" button); the parsing below is our own because the
# Arkyn family also accepts a bare token without the "Bearer " prefix.
bearer_scheme = HTTPBearer(auto_error=False, description="A user token or an ingest key")


# How long an ingest key's lookup is reused. The write transaction confirms the key anyway
# (``traffic.access.grant_ingest``); the limit keeps a revoked key's entry from lingering.
CLAIMED_KEY_SECONDS = 300.0
CLAIMED_KEYS = 10_000


@dataclass(frozen=True)
class Principal:
    user_id: str
    # Set when the caller is an ingest key: the only traffic source it may write to.
    ingest_source_id: str | None = None
    # The ingest key's own id and when it was last recorded as used (to record use sparingly).
    ingest_key_id: str | None = None
    ingest_key_last_used_at: datetime | None = None

    @property
    def is_ingest_key(self) -> bool:
        return self.ingest_source_id is not None


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Db = Annotated[Database, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings)]


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None or not header.strip():
        raise MissingToken()
    scheme, _, rest = header.strip().partition(" ")
    token = rest.strip() if scheme.lower() == "bearer" else header.strip()
    if not token or token == "null":
        raise Unauthorized()
    return token


def resolve_principal(request: Request) -> Principal:
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = _bearer_token(request)
    db = get_db(request)
    if is_ingest_key(token):
        principal = _key_principal(queries.active_ingest_key_now(db, hash_ingest_key(token)))
    else:
        user_id = user_id_from_token(token, get_settings(request).secret_key)
        if not queries.user_exists_now(db, user_id):
            raise Unauthorized()
        principal = Principal(user_id=user_id)
    request.state.principal = principal
    return principal


def _key_principal(key: dict[str, Any] | None) -> Principal:
    if key is None:
        raise Unauthorized("Invalid or revoked ingest key")
    return Principal(
        user_id=key["owner_id"],
        ingest_source_id=key["traffic_source_id"],
        ingest_key_id=key["id"],
        ingest_key_last_used_at=key["last_used_at"],
    )


def claimed_ingest_keys() -> TTLCache[str, Principal]:
    """The per-process memory of ingest keys for ``claim_principal``: a key stops being
    reused ``CLAIMED_KEY_SECONDS`` after its lookup, and the least recently used make room."""
    return TTLCache(CLAIMED_KEYS, CLAIMED_KEY_SECONDS)


async def claim_principal(request: Request) -> Principal:
    """The caller as its token claims, for routes that confirm it in their write transaction.

    A user token's signature and expiry are checked here (once per token: ``VerifiedTokens``)
    but not that its user exists; an ingest key is looked up once per process and remembered,
    not re-checked for revocation. ``traffic.access.grant_ingest`` confirms both in the
    transaction that stores the records, where it costs one query per group commit instead of
    a database round trip per request.
    """
    token = _bearer_token(request)
    state = request.app.state
    if is_ingest_key(token):
        key_hash = hash_ingest_key(token)
        keys: TTLCache[str, Principal] = state.claimed_ingest_keys
        principal = keys.get(key_hash)
        if principal is None:
            key = await run_in_threadpool(queries.active_ingest_key_now, get_db(request), key_hash)
            # Without its last use: that is read again in the transaction (grant_ingest).
            principal = replace(_key_principal(key), ingest_key_last_used_at=None)
            keys[key_hash] = principal
    else:
        principal = Principal(user_id=state.verified_tokens.user_id(token))
    request.state.principal = principal
    return principal


async def authenticated(
    request: Request, _doc: Annotated[object, Depends(bearer_scheme)] = None
) -> Principal:
    # The route class resolved the principal before the body (common.routing), so this is
    # normally a lookup in the request state; async so that FastAPI does not hop to a thread
    # for it. A caller outside those routes still gets it resolved, off the event loop.
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    return await run_in_threadpool(resolve_principal, request)


async def user_only(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    if principal.is_ingest_key:
        raise Forbidden("Ingest keys can only write traffic; use a user token")
    return principal


# Any caller with a valid token: a user, or an ingest key (routes must check its source).
CurrentPrincipal = Annotated[Principal, Depends(authenticated)]
# A logged-in user; ingest keys are refused.
CurrentUser = Annotated[Principal, Depends(user_only)]
