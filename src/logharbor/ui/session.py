"""The browser session: the API's own JWT, carried in an HttpOnly cookie instead of a header.

The cookie is only read by UI pages; the JSON APIs keep accepting ``Authorization`` headers only,
so a page on another site can never make a browser spend the cookie on an API write.
UI writes are HTML forms and need two more things: a same-origin ``Origin``/``Referer`` (when the
browser sends one) and a CSRF token derived from the session token, so nothing has to be stored
per session on the server.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from fastapi import Request, Response

from logharbor.auth import queries
from logharbor.auth.deps import Principal, get_db, get_settings
from logharbor.auth.tokens import user_id_from_token
from logharbor.common.errors import Forbidden, LogHarborError, Unauthorized

COOKIE = "logharbor_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(LogHarborError):
    """Raised by pages when nobody is signed in; the UI answers with a redirect to the login."""

    status_code = 401


def session_token(request: Request) -> str | None:
    token = request.cookies.get(COOKIE)
    return token or None


def current_user(request: Request) -> Principal | None:
    """The signed-in user, or None when the cookie is missing, expired or the user is gone."""
    cached = getattr(request.state, "ui_principal", None)
    if isinstance(cached, Principal):
        return cached
    token = session_token(request)
    if token is None:
        return None
    try:
        user_id = user_id_from_token(token, get_settings(request).secret_key)
    except Unauthorized:
        return None
    with get_db(request).read() as conn:
        user = queries.get_user(conn, user_id)
    if user is None:
        return None
    principal = Principal(user_id=user_id)
    request.state.ui_principal = principal
    # For the page header; never the password hash.
    request.state.ui_user = {"id": user["id"], "name": user["name"], "email": user["email"]}
    return principal


def require_user(request: Request) -> Principal:
    principal = current_user(request)
    if principal is None:
        raise LoginRequired()
    return principal


def start_session(request: Request, response: Response, token: str) -> None:
    settings = get_settings(request)
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.token_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


def csrf_token(request: Request) -> str:
    """A token bound to this session; empty when signed out (login forms rely on Origin)."""
    token = session_token(request)
    if token is None:
        return ""
    secret = get_settings(request).secret_key.encode()
    return hmac.new(secret, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()[:40]


def _same_origin(request: Request) -> bool:
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        # Browsers send Origin on every cross-site POST; a missing one is a same-site tool.
        return source != "null"
    parts = urlsplit(source)
    return parts.netloc == request.headers.get("host", request.url.netloc)


def check_form_origin(request: Request, form: dict[str, str], *, signed_in: bool) -> None:
    """Refuse a form post that another site could have made the browser send."""
    if not _same_origin(request):
        raise Forbidden("This form was posted from another site.")
    if signed_in:
        sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
        if not hmac.compare_digest(sent, csrf_token(request)):
            raise Forbidden("The form expired; reload the page and try again.")
