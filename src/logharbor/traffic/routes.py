"""The traffic-log API (Arkyn Logs compatible): one router made of the feature's route modules.

- ``source_routes``: traffic sources, read-only shares, write-only ingest keys;
- ``entity_routes``: domains, pathnames, core pathnames, standalone requests and responses;
- ``traffic_routes``: http-traffic, records (compose, list, detail), ``/ingest-log``, core logs.
"""

from __future__ import annotations

from fastapi import APIRouter

from logharbor.common.routing import ArkynRoute
from logharbor.traffic import entity_routes, source_routes, traffic_routes

router = APIRouter(route_class=ArkynRoute)
# traffic_routes first: it holds the ingest hot path, and routes are matched in order.
router.include_router(traffic_routes.router)
router.include_router(source_routes.router)
router.include_router(entity_routes.router)
