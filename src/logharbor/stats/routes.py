from __future__ import annotations

from fastapi import APIRouter

from logharbor.common.routing import ArkynRoute

router = APIRouter(route_class=ArkynRoute)
