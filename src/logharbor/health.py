"""Probes for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from logharbor import __version__
from logharbor.auth.deps import Db
from logharbor.common.routing import ArkynRoute

router = APIRouter(route_class=ArkynRoute, tags=["health"])


@router.get("/health")
def health(db: Db) -> JSONResponse:
    """200 when the database answers, 503 when it does not."""
    reachable = db.ping()
    body = {
        "status": "ok" if reachable else "unavailable",
        "database": "ok" if reachable else "unreachable",
        "dialect": db.dialect,
        "version": __version__,
    }
    return JSONResponse(body, status_code=200 if reachable else 503)


@router.get("/health-check", response_class=PlainTextResponse, include_in_schema=False)
def health_check() -> str:
    """The original Arkyn server's liveness path."""
    return f"LogHarbor is healthy on version {__version__}"
