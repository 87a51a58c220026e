"""LLM calls, the traces they belong to, and the prices that cost them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from logharbor.auth.deps import CurrentUser, Db
from logharbor.common.pagination import Page, Paginated
from logharbor.common.routing import ArkynRoute
from logharbor.llm import services
from logharbor.llm.prices import Price
from logharbor.llm.schemas import GenerationDetailOut, GenerationOut, PriceIn, PriceOut, TraceOut

router = APIRouter(route_class=ArkynRoute, tags=["llm calls"])

_ERRORS: dict[int | str, dict[str, Any]] = {400: {}, 401: {}, 403: {}, 404: {}}


@router.get(
    "/generations/{trafficSourceId}",
    response_model=Paginated[GenerationOut],
    responses=_ERRORS,
)
def list_generations(
    trafficSourceId: str,
    principal: CurrentUser,
    db: Db,
    page: Page,
    traceId: Annotated[str | None, Query(description="Calls of this W3C trace")] = None,
    model: Annotated[str | None, Query(description="Requested or answered model")] = None,
    promptId: Annotated[str | None, Query(description="Calls made from this prompt")] = None,
    trafficRecordId: Annotated[
        str | None, Query(description="Calls made while serving this record")
    ] = None,
) -> dict[str, Any]:
    """The source's LLM calls, newest first."""
    filters = services.GenerationFilters(traceId, model, promptId, trafficRecordId)
    return services.list_generations(db, principal, trafficSourceId, filters, page)


@router.get(
    "/generations/{trafficSourceId}/{generationId}",
    response_model=GenerationDetailOut,
    responses=_ERRORS,
)
def get_generation(
    trafficSourceId: str, generationId: str, principal: CurrentUser, db: Db
) -> dict[str, Any]:
    """One LLM call with its messages and parameters."""
    return services.get_generation(db, principal, trafficSourceId, generationId)


@router.get("/traces/{trafficSourceId}/{traceId}", response_model=TraceOut, responses=_ERRORS)
def get_trace(trafficSourceId: str, traceId: str, principal: CurrentUser, db: Db) -> dict[str, Any]:
    """A trace's waterfall: its HTTP records, LLM calls and other spans."""
    return services.trace(db, principal, trafficSourceId, traceId)


@router.get("/model-prices", response_model=list[PriceOut], responses=_ERRORS)
def list_prices(principal: CurrentUser, db: Db) -> list[dict[str, Any]]:
    """Prices per million tokens (US dollars): yours, and the defaults you did not replace."""
    return services.list_prices(db, principal)


@router.put("/model-prices/{model}", response_model=PriceOut, responses=_ERRORS)
async def set_price(model: str, body: PriceIn, principal: CurrentUser, request: Request) -> Any:
    """Your price for a model (and the models named after it, as ``gpt-4o-2024-08-06`` is after
    ``gpt-4o``); calls stored from now on are costed with it."""
    price = Price(body.inputPerMillion, body.outputPerMillion, body.cachedInputPerMillion)
    return await services.set_price(request.app.state.writer, principal, model, price)


@router.delete("/model-prices/{model}", status_code=204, responses=_ERRORS)
async def delete_price(model: str, principal: CurrentUser, request: Request) -> Response:
    """Go back to the default price for a model."""
    await services.delete_price(request.app.state.writer, principal, model)
    return Response(status_code=204)
