"""The prompt library: search, a prompt with its versions, and its logs side by side per model.

One prompt's reads go through the prompts feature's services, under its ownership rule, as the
API's routes do; the library list reads its queries.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from logharbor.auth.deps import get_db
from logharbor.common.errors import BadRequest, NotFound
from logharbor.common.ids import from_prefixed
from logharbor.common.pagination import PageRequest
from logharbor.prompts import queries as prompt_queries
from logharbor.prompts import schemas as prompt_schemas
from logharbor.prompts import search as prompt_search
from logharbor.prompts import services as prompt_services
from logharbor.ui import session
from logharbor.ui.rendering import UIRoute, redirect, render, signed_form

router = APIRouter(route_class=UIRoute, include_in_schema=False)

PAGE_SIZE = 50


# The prompts API's ownership rule (404 unknown, 403 someone else's), in the pages' words.
_MESSAGES = {"forbidden": "This prompt belongs to another user.", "not_found": "Prompt not found"}


@router.get("/ui/prompts")
def prompt_list(request: Request, q: str = "", page: int = 1) -> Response:
    principal = session.require_user(request)
    page_request = PageRequest(page=max(1, page), page_limit=PAGE_SIZE)
    terms = prompt_search.parse_terms(q) if q.strip() else []
    with get_db(request).read() as conn:
        if terms:
            listing = prompt_queries.search_prompts(conn, principal.user_id, terms, page_request)
        else:
            listing = prompt_queries.list_prompts(conn, principal.user_id, page_request)
        prompts = [prompt_schemas.prompt_json(row) for row in listing.rows]
    total = listing.total or 0
    return render(
        request,
        "prompts.html",
        {
            "prompts": prompts,
            "q": q,
            "total": total,
            "page": page_request.page,
            "pages": max(1, -(-total // PAGE_SIZE)),
        },
    )


@router.get("/ui/prompts/{prompt_ref}")
def prompt_page(request: Request, prompt_ref: str, version: int | None = None) -> Response:
    principal = session.require_user(request)
    prompt_id = _prompt_id(prompt_ref)
    db = get_db(request)
    row = prompt_services.read_prompt(db, principal, prompt_id, **_MESSAGES)
    versions = prompt_services.prompt_versions(db, principal, prompt_id, **_MESSAGES)
    listing = prompt_services.prompt_logs(db, principal, prompt_id, None, **_MESSAGES)
    logs = [prompt_schemas.log_json(r) for r in listing.rows]
    stats = prompt_services.prompt_score_stats(db, principal, prompt_id, **_MESSAGES)
    prompt = prompt_schemas.prompt_json(row)
    versions.reverse()
    shown = next((v for v in versions if v["version"] == version), versions[0])
    if version is not None and shown["version"] != version:
        raise NotFound("No such version")
    by_model: dict[str, list[dict[str, Any]]] = {}
    for log in reversed(logs):  # newest first within each model
        by_model.setdefault(log["modelUsed"], []).append(log)
    model_stats = {m["modelUsed"]: m for m in stats["byModel"]}
    columns = [
        {"model": m["modelUsed"], "stats": m, "logs": by_model.get(m["modelUsed"], [])}
        for m in stats["byModel"]
    ]
    return render(
        request,
        "prompt.html",
        {
            "prompt": prompt,
            "versions": versions,
            "shown": shown,
            "columns": columns,
            "stats": stats,
            "model_stats": model_stats,
        },
    )


def _prompt_id(prompt_ref: str) -> str:
    prompt_id = from_prefixed("prompt", prompt_ref)
    if prompt_id is None:
        raise NotFound(_MESSAGES["not_found"])
    return prompt_id


def _version_field(form: dict[str, str]) -> int:
    raw = form.get("version", "")
    if not raw.isdigit():
        raise BadRequest("Choose a version", field_errors={"version": "must be a version number"})
    return int(raw)


@router.post("/ui/prompts/{prompt_ref}/labels")
async def set_label(request: Request, prompt_ref: str) -> Response:
    """Point a label at the version shown (the same service as ``PUT /prompts/:id/labels/:l``)."""
    principal, form = await signed_form(request)
    prompt_id = _prompt_id(prompt_ref)
    label = form.get("label", "").strip()
    prompt_services.check_label(label)
    version = _version_field(form)
    db = get_db(request)
    prompt_services.set_label(db, principal, prompt_id, label, version, **_MESSAGES)
    return redirect(f"/ui/prompts/{prompt_ref}?version={version}")


@router.post("/ui/prompts/{prompt_ref}/labels/{label}/delete")
async def delete_label(request: Request, prompt_ref: str, label: str) -> Response:
    principal, _ = await signed_form(request)
    prompt_id = _prompt_id(prompt_ref)
    prompt_services.check_label(label)
    prompt_services.delete_label(get_db(request), principal, prompt_id, label, **_MESSAGES)
    return redirect(f"/ui/prompts/{prompt_ref}")
