from __future__ import annotations

from fastapi import APIRouter

from logharbor.common.routing import PromptCrafterRoute

router = APIRouter(route_class=PromptCrafterRoute)
