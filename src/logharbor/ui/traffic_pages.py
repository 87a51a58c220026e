"""Traffic pages: sources overview, explorer, record view, charts, exceptions, webhooks, keys."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from logharbor.ui import session
from logharbor.ui.rendering import UIRoute, render

router = APIRouter(route_class=UIRoute, include_in_schema=False)


@router.get("/")
def home(request: Request) -> Response:
    session.require_user(request)
    return render(request, "home.html", {"sources": []})
