"""Traffic sources, their read-only shares and their write-only ingest keys (the work is in
services.py, which the web UI calls too).

Every handler is registered once under the documented singular path, with the original server's
plural path stacked as an undocumented alias.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from logharbor.auth.deps import CurrentUser, Db
from logharbor.common.pagination import Page, Paginated
from logharbor.common.routing import ArkynRoute, also_at
from logharbor.traffic import services
from logharbor.traffic.filters import NameFilter, Sort
from logharbor.traffic.schemas import (
    IngestKeyCreated,
    IngestKeyIn,
    IngestKeyOut,
    ShareIn,
    ShareOut,
    TrafficSourceIn,
    TrafficSourceOut,
    TrafficSourceUpdate,
)

router = APIRouter(route_class=ArkynRoute, tags=["traffic sources"])

_ERRORS: dict[int | str, dict[str, Any]] = {400: {}, 401: {}, 403: {}, 404: {}}


def _no_content() -> Response:
    return Response(status_code=204)


@also_at(router, "/traffic-sources")
@router.post("/traffic-source", status_code=201, response_model=TrafficSourceOut, responses=_ERRORS)
def create_source(body: TrafficSourceIn, principal: CurrentUser, db: Db) -> TrafficSourceOut:
    """Create a traffic source (one monitored app); the caller owns it."""
    return services.create_source(db, principal, body)


@also_at(router, "/traffic-sources")
@router.get("/traffic-source", response_model=Paginated[TrafficSourceOut], responses=_ERRORS)
def list_sources(
    principal: CurrentUser, db: Db, page: Page, sort: Sort, q: NameFilter
) -> Paginated[TrafficSourceOut]:
    """The caller's traffic sources and those shared with them (see ``access``).

    Sort by createdAt (default), updatedAt or name; ``q`` searches the name.
    """
    return services.list_sources(db, principal, page, sort, q)


@also_at(router, "/traffic-sources/{trafficSourceId}")
@router.get("/traffic-source/{trafficSourceId}", response_model=TrafficSourceOut, responses=_ERRORS)
def get_source(trafficSourceId: str, principal: CurrentUser, db: Db) -> TrafficSourceOut:
    """One traffic source you own or that is shared with you."""
    return services.get_source(db, principal, trafficSourceId)


@also_at(router, "/traffic-sources/{trafficSourceId}")
@router.put("/traffic-source/{trafficSourceId}", response_model=TrafficSourceOut, responses=_ERRORS)
def update_source(
    trafficSourceId: str, body: TrafficSourceUpdate, principal: CurrentUser, db: Db
) -> TrafficSourceOut:
    """Rename, change the domain, the retention (``retentionDays: null`` keeps everything) or
    turn the capture of LLM content off and on (``captureLlmContent``)."""
    return services.update_source(db, principal, trafficSourceId, body)


@also_at(router, "/traffic-sources/{trafficSourceId}")
@router.delete(
    "/traffic-source/{trafficSourceId}", status_code=204, response_class=Response, responses=_ERRORS
)
def delete_source(trafficSourceId: str, principal: CurrentUser, db: Db) -> Response:
    """Delete a traffic source and everything under it (domains, records, keys, shares...)."""
    services.delete_source(db, principal, trafficSourceId)
    return _no_content()


# --- shares ------------------------------------------------------------------------------------


@also_at(router, "/traffic-sources/{trafficSourceId}/shares")
@router.post(
    "/traffic-source/{trafficSourceId}/shares",
    status_code=201,
    response_model=ShareOut,
    responses={**_ERRORS, 409: {}},
)
def create_share(trafficSourceId: str, body: ShareIn, principal: CurrentUser, db: Db) -> ShareOut:
    """Share a traffic source read-only with another user, by their email."""
    return services.create_share(db, principal, trafficSourceId, body)


@also_at(router, "/traffic-sources/{trafficSourceId}/shares")
@router.get(
    "/traffic-source/{trafficSourceId}/shares", response_model=list[ShareOut], responses=_ERRORS
)
def list_shares(trafficSourceId: str, principal: CurrentUser, db: Db) -> list[ShareOut]:
    """Who the traffic source is shared with (owner only)."""
    return services.list_shares(db, principal, trafficSourceId)


@also_at(router, "/traffic-sources/{trafficSourceId}/shares/{userId}")
@router.delete(
    "/traffic-source/{trafficSourceId}/shares/{userId}",
    status_code=204,
    response_class=Response,
    responses=_ERRORS,
)
def delete_share(trafficSourceId: str, userId: str, principal: CurrentUser, db: Db) -> Response:
    """Revoke a share. The owner may revoke any; a viewer may remove their own."""
    services.delete_share(db, principal, trafficSourceId, userId)
    return _no_content()


# --- ingest keys -------------------------------------------------------------------------------


@also_at(router, "/traffic-sources/{trafficSourceId}/ingest-keys")
@router.post(
    "/traffic-source/{trafficSourceId}/ingest-keys",
    status_code=201,
    response_model=IngestKeyCreated,
    responses=_ERRORS,
)
def create_ingest_key(
    trafficSourceId: str, body: IngestKeyIn, principal: CurrentUser, db: Db
) -> IngestKeyCreated:
    """A write-only key for a collector: it may send traffic to this source and read nothing.

    The key is in this response only; we keep its hash.
    """
    return services.create_ingest_key(db, principal, trafficSourceId, body)


@also_at(router, "/traffic-sources/{trafficSourceId}/ingest-keys")
@router.get(
    "/traffic-source/{trafficSourceId}/ingest-keys",
    response_model=list[IngestKeyOut],
    responses=_ERRORS,
)
def list_ingest_keys(trafficSourceId: str, principal: CurrentUser, db: Db) -> list[IngestKeyOut]:
    """The source's ingest keys, revoked ones included (never the key itself)."""
    return services.list_ingest_keys(db, principal, trafficSourceId)


@also_at(router, "/traffic-sources/{trafficSourceId}/ingest-keys/{keyId}")
@router.delete(
    "/traffic-source/{trafficSourceId}/ingest-keys/{keyId}",
    status_code=204,
    response_class=Response,
    responses=_ERRORS,
)
def revoke_ingest_key(trafficSourceId: str, keyId: str, principal: CurrentUser, db: Db) -> Response:
    """Revoke a key at once; requests made with it answer 401 from now on."""
    services.revoke_ingest_key(db, principal, trafficSourceId, keyId)
    return _no_content()
