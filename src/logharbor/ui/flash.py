"""One-time messages across Post/Redirect/Get, for what a page shows only once.

A form that creates something answers with a redirect, so that reloading the page that follows
repeats a GET rather than the POST (which would create it again). What the creation produced and
must be shown once (a webhook's signing secret, an ingest key) has to cross that redirect to
whichever worker or host serves the GET, and must not be kept anywhere in clear. It is split in
two: a random pad as long as the message in the database (``ui_flashes``, bound to the user and
the page, deleted when read or after ``LIFETIME``), and the message XOR the pad in a short-lived
HttpOnly cookie scoped to that page. Either half alone says nothing. The GET that shows the
message deletes the row and the cookie, so a reload, or the cookie replayed, shows nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import Request, Response

from logharbor.auth.deps import get_db
from logharbor.common.ids import is_uuid, new_id
from logharbor.common.timestamps import utcnow
from logharbor.ui import queries, session
from logharbor.ui.rendering import redirect

COOKIE = "logharbor_flash"
# The redirect is followed at once; this only bounds how long an unfollowed one lingers.
LIFETIME = timedelta(minutes=5)


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def redirect_with(request: Request, path: str, message: dict[str, Any]) -> Response:
    """A 303 to the page at ``path`` that shows ``message`` once (see ``show_once``)."""
    principal = session.require_user(request)
    data = json.dumps(message, separators=(",", ":")).encode()
    pad = secrets.token_bytes(len(data))
    flash_id = new_id()
    now = utcnow()
    with get_db(request).write() as conn:
        # Unfollowed redirects leave rows behind; they are swept here, where rows are added.
        queries.delete_expired_flashes(conn, now)
        queries.insert_flash(
            conn,
            flash_id=flash_id,
            user_id=principal.user_id,
            path=path,
            pad=pad,
            expires_at=now + LIFETIME,
        )
    response = redirect(path)
    sealed = base64.urlsafe_b64encode(_xor(data, pad)).decode().rstrip("=")
    response.set_cookie(
        COOKIE,
        f"{flash_id}.{sealed}",
        max_age=int(LIFETIME.total_seconds()),
        path=path,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def show_once(request: Request, page: Callable[[dict[str, Any]], Response]) -> Response:
    """The GET half of Post/Redirect/Get: ``page`` renders what was left for it (``{}`` when
    nothing, or nothing any more), and the cookie is dropped with the answer."""
    return _shown(request, page(_take(request) or {}))


def _take(request: Request) -> dict[str, Any] | None:
    """The message left for this page and this user, once; None when there is none (any more)."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    flash_id, _, sealed = value.partition(".")
    if not is_uuid(flash_id):
        return None
    try:
        cipher = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    except (binascii.Error, ValueError):
        return None
    principal = session.require_user(request)
    with get_db(request).write() as conn:
        pad = queries.take_flash(
            conn,
            flash_id=flash_id.lower(),
            user_id=principal.user_id,
            path=request.url.path,
            now=utcnow(),
        )
    if pad is None or len(pad) != len(cipher):
        return None
    try:
        message = json.loads(_xor(cipher, pad))
    except ValueError:  # a cookie altered in the browser
        return None
    return message if isinstance(message, dict) else None


def _shown(request: Request, response: Response) -> Response:
    """Drop the cookie once the page that read it is answered (its row is already gone)."""
    if COOKIE in request.cookies:
        response.delete_cookie(
            COOKIE,
            path=request.url.path,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response
