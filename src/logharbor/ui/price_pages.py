"""The model price table: defaults and the user's own prices, edited over ``llm.services`` like
the API's ``/model-prices`` (same validation, same writer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from logharbor.auth.deps import get_db
from logharbor.common.errors import BadRequest
from logharbor.llm import services as llm_services
from logharbor.llm.prices import Price
from logharbor.llm.schemas import PriceIn
from logharbor.ui import session
from logharbor.ui.rendering import UIRoute, form_errors, redirect, render, signed_form

router = APIRouter(route_class=UIRoute, include_in_schema=False)

PRICES_PATH = "/ui/prices"
_FIELDS = ("inputPerMillion", "outputPerMillion", "cachedInputPerMillion")


def _prices_page(
    request: Request,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    edit: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    principal = session.require_user(request)
    context = {
        "prices": llm_services.list_prices(get_db(request), principal),
        "form": form or {},
        "errors": errors or {},
        # The model whose edit form failed: {"model", "form", "errors"} to show it open again.
        "edit": edit,
    }
    return render(request, "prices.html", context, status=status)


def _price(form: dict[str, str]) -> Price:
    """Form text to a price through the API's own schema; a blank cached price means none."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in _FIELDS:
        text = form.get(field, "").strip()
        if not text:
            if field != "cachedInputPerMillion":
                errors[field] = "Required"
            continue
        try:
            values[field] = float(text)
        except ValueError:
            errors[field] = "Must be a number (US dollars per million tokens)"
    if errors:
        raise BadRequest("Invalid price", field_errors=errors)
    body = PriceIn(**values)
    return Price(body.inputPerMillion, body.outputPerMillion, body.cachedInputPerMillion)


@router.get(PRICES_PATH)
def prices_page(request: Request) -> Response:
    return _prices_page(request)


@router.post(PRICES_PATH)
async def save_price(request: Request) -> Response:
    """Add or edit a price: the same form for both, with ``editing`` set by an edit form so that
    its errors show under that model's row rather than under "Add a price"."""
    principal, form = await signed_form(request)
    values = {k: form.get(k, "").strip() for k in ("model", *_FIELDS)}
    editing = form.get("editing", "")
    try:
        price = _price(form)
        await llm_services.set_price(request.app.state.writer, principal, values["model"], price)
    except (ValidationError, BadRequest) as exc:
        errors = form_errors(exc, "model")
        if editing:
            edit = {"model": editing, "form": values, "errors": errors}
            return _prices_page(request, edit=edit, status=400)
        return _prices_page(request, form=values, errors=errors, status=400)
    return redirect(PRICES_PATH)


@router.post(PRICES_PATH + "/reset")
async def reset_price(request: Request) -> Response:
    principal, form = await signed_form(request)
    await llm_services.delete_price(request.app.state.writer, principal, form.get("model", ""))
    return redirect(PRICES_PATH)
