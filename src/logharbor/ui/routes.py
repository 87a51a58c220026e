"""The web UI: sign-in/up, static assets, and the pages of each feature (see the other modules).

Pages live under ``/ui/`` (plus the home page at ``/``) so that they never shadow an API path.
"""

from __future__ import annotations

import mimetypes
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import ValidationError

from logharbor.auth import services as auth_services
from logharbor.auth.deps import get_db, get_settings
from logharbor.auth.schemas import PASSWORD_MAX, PASSWORD_MIN, LoginIn, SignupIn
from logharbor.common.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from logharbor.ui import session
from logharbor.ui.rendering import STATIC, UIRoute, read_form, redirect, render

router = APIRouter(route_class=UIRoute, include_in_schema=False)

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")


@router.get("/ui/static/{path:path}")
def static(path: str) -> Response:
    """Vendored and own assets; served by the app itself, so nothing is fetched from a CDN."""
    root = STATIC.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise NotFound("No such file")
    return FileResponse(target, headers={"Cache-Control": "public, max-age=3600"})


def _safe_next(value: str | None) -> str:
    """Only same-site paths, so the login form cannot bounce users to another site."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return "/"
    return value


@router.get("/ui/login")
def login_page(request: Request, next: str | None = None) -> Response:
    if session.current_user(request) is not None:
        return redirect(_safe_next(next))
    settings = get_settings(request)
    return render(
        request,
        "login.html",
        {"next": _safe_next(next), "email": "", "allow_signup": settings.allow_signup},
    )


@router.post("/ui/login")
async def login_submit(request: Request) -> Response:
    form = await read_form(request)
    session.check_form_origin(request, form, signed_in=False)
    settings = get_settings(request)
    target = _safe_next(form.get("next"))
    email = form.get("email", "").strip()
    context = {"next": target, "email": email, "allow_signup": settings.allow_signup}
    try:
        token = auth_services.log_in(
            get_db(request), settings, LoginIn(email=email, password=form.get("password", ""))
        )
    except Unauthorized:
        return render(
            request, "login.html", {**context, "error": "Incorrect email or password."}, 401
        )
    response = redirect(target)
    session.start_session(request, response, token.token)
    return response


@router.get("/ui/signup")
def signup_page(request: Request) -> Response:
    settings = get_settings(request)
    context = {"form": {}, "errors": {}, "allow_signup": settings.allow_signup}
    context["password_min"], context["password_max"] = PASSWORD_MIN, PASSWORD_MAX
    return render(request, "signup.html", context)


@router.post("/ui/signup")
async def signup_submit(request: Request) -> Response:
    form = await read_form(request)
    session.check_form_origin(request, form, signed_in=False)
    settings = get_settings(request)
    db = get_db(request)
    values = {k: form.get(k, "") for k in ("name", "email", "password")}
    errors: dict[str, str] = {}
    if not values["name"].strip():
        errors["name"] = "Enter your name."
    if not PASSWORD_MIN <= len(values["password"]) <= PASSWORD_MAX:
        errors["password"] = f"Use {PASSWORD_MIN} to {PASSWORD_MAX} characters."
    message = None
    if not errors:
        try:
            # The API's own sign-up and login: same rules, same messages, same token.
            auth_services.sign_up(db, settings, SignupIn(**values))
            token = auth_services.log_in(
                db, settings, LoginIn(email=values["email"], password=values["password"])
            )
        except ValidationError:
            errors["email"] = "Fill in every field."
        except BadRequest as exc:
            errors.update(exc.field_errors or {"password": exc.message})
        except Conflict:
            errors["email"] = "An account with this email already exists."
        except Forbidden as exc:
            message = exc.message
        else:
            response = redirect("/")
            session.start_session(request, response, token.token)
            return response
    context = {
        "form": {"name": values["name"], "email": values["email"]},
        "errors": errors,
        "error": message,
        "allow_signup": settings.allow_signup,
        "password_min": PASSWORD_MIN,
        "password_max": PASSWORD_MAX,
    }
    return render(request, "signup.html", context, status=400 if errors else 403)


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    form = await read_form(request)
    session.check_form_origin(request, form, signed_in=session.current_user(request) is not None)
    response = redirect("/ui/login")
    session.end_session(response)
    return response


# Feature pages; imported last so that their routes come after the shared ones above.
from logharbor.ui import source_pages, traffic_pages  # noqa: E402

router.include_router(source_pages.router)
router.include_router(traffic_pages.router)
from logharbor.ui import charts  # noqa: E402

router.include_router(charts.router)
from logharbor.ui import prompt_pages  # noqa: E402

router.include_router(prompt_pages.router)
from logharbor.ui import alert_pages  # noqa: E402

router.include_router(alert_pages.router)
from logharbor.ui import llm_pages  # noqa: E402

router.include_router(llm_pages.router)
from logharbor.ui import price_pages  # noqa: E402

router.include_router(price_pages.router)
from logharbor.ui import llm_charts  # noqa: E402

router.include_router(llm_charts.router)
