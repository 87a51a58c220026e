"""Templates, the UI's route class (HTML errors, login redirects) and form parsing."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from logharbor import __version__
from logharbor.auth.deps import Principal
from logharbor.common.errors import BadRequest, LogHarborError
from logharbor.common.handlers import validation_error
from logharbor.common.timestamps import iso
from logharbor.ui import session

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

MAX_FORM_BYTES = 256 * 1024


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return iso(value)
    return str(value or "")


def _ms(value: Any) -> str:
    if value is None:
        return "\u2013"
    number = float(value)
    if number >= 1000:
        return f"{number / 1000:.2f} s"
    if number >= 100:
        return f"{number:.0f} ms"
    return f"{number:.1f} ms"


def _pct(value: Any) -> str:
    if value is None:
        return "\u2013"
    return f"{float(value) * 100:.1f}%"


def _status_class(status: Any) -> str:
    code = int(status or 0)
    if code >= 500:
        return "s5"
    if code >= 400:
        return "s4"
    if code >= 300:
        return "s3"
    return "s2"


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters.update(iso=_iso, ms=_ms, pct=_pct, status_class=_status_class)
env.globals["version"] = __version__


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    user = getattr(request.state, "ui_user", None)
    values = {
        "request": request,
        "user": user,
        "csrf": session.csrf_token(request) if user else "",
        "path": request.url.path,
        **(context or {}),
    }
    html = env.get_template(template).render(values)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def redirect(url: str) -> RedirectResponse:
    # 303 so that a POST is followed by a GET (no form re-submission on reload).
    return RedirectResponse(url, status_code=303)


def _is_fragment(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def error_page(request: Request, error: LogHarborError) -> Response:
    if isinstance(error, session.LoginRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = f"/ui/login?next={quote(target, safe='')}"
        if _is_fragment(request):
            # htmx follows HX-Redirect with a full page load.
            return Response(status_code=204, headers={"HX-Redirect": login})
        return redirect(login)
    context = {"status": error.status_code, "message": error.message, "errors": error.field_errors}
    return render(request, "error.html", context, status=error.status_code)


class UIRoute(APIRoute):
    """HTML in, HTML out: errors become pages (or a login redirect), never JSON envelopes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LogHarborError as error:
                return error_page(request, error)
            except RequestValidationError as exc:
                return error_page(request, validation_error(exc.errors()))

        return guarded


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body as a dict (last value wins); no multipart needed for these forms."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise BadRequest("Forms must be sent as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadRequest("Form is too large")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise BadRequest("Form is not valid UTF-8") from None


async def signed_form(request: Request) -> tuple[Principal, dict[str, str]]:
    """How every UI write starts: the signed-in user and their form, its CSRF token checked."""
    principal = session.require_user(request)
    form = await read_form(request)
    session.check_form_origin(request, form, signed_in=True)
    return principal, form


def form_errors(exc: ValidationError | LogHarborError, field: str) -> dict[str, str]:
    """What to show under a form's inputs: per field when known, else the message on ``field``."""
    if isinstance(exc, ValidationError):
        return validation_error(exc.errors()).field_errors
    return exc.field_errors or {field: exc.message}
