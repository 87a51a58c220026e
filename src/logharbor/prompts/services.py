"""What the PromptCrafter API and the web UI both do with one prompt: read it under the
ownership rule, its versions, its logs and its scores. Each takes the sentences to answer with,
because every PromptCrafter endpoint documents its own (routes.py) and the pages speak plainly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, RowMapping

from logharbor.auth.deps import Principal
from logharbor.common.errors import BadRequest, Forbidden, NotFound
from logharbor.common.pagination import PageRequest
from logharbor.db.engine import Database
from logharbor.llm import queries as llm_queries
from logharbor.prompts import queries
from logharbor.prompts.queries import Listing
from logharbor.prompts.schemas import LABEL_PATTERN, resolved_json, stats_json, version_json
from logharbor.traffic.record_reads import record_reads

LABEL_INVALID = "A label is 1 to 50 characters of a-z, 0-9, _ and -."
LABEL_NOT_FOUND = "The prompt has no such label."
VERSION_NOT_FOUND = "The prompt has no such version."


def owned(
    row: RowMapping | None, principal: Principal, *, forbidden: str, not_found: str
) -> RowMapping:
    """The ownership rule: an unknown prompt is 404, someone else's 403."""
    if row is None:
        raise NotFound(not_found)
    if row["owner_id"] != principal.user_id:
        raise Forbidden(forbidden)
    return row


def read_prompt(
    db: Database, principal: Principal, prompt_id: str, *, forbidden: str, not_found: str
) -> RowMapping:
    with db.read() as conn:
        row = queries.get_prompt(conn, prompt_id)
    return owned(row, principal, forbidden=forbidden, not_found=not_found)


def prompt_versions(
    db: Database, principal: Principal, prompt_id: str, *, forbidden: str, not_found: str
) -> list[dict[str, Any]]:
    """Every version of the prompt, oldest first, the current one last (``current: true``)."""
    with db.read() as conn:
        prompt = owned(
            queries.get_prompt(conn, prompt_id), principal, forbidden=forbidden, not_found=not_found
        )
        older = queries.list_versions(conn, prompt_id)
        labels = queries.labels_by_version(conn, prompt_id)
    items = [
        version_json(row, current=False, labels=labels.get(row["version"], ())) for row in older
    ]
    # The current version began when the prompt was last changed.
    current = {**prompt, "created_at": prompt["updated_at"]}
    items.append(version_json(current, current=True, labels=labels.get(prompt["version"], ())))
    return items


def prompt_score_stats(
    db: Database, principal: Principal, prompt_id: str, *, forbidden: str, not_found: str
) -> dict[str, Any]:
    """How the prompt's logs scored: overall, per model and per version."""
    with db.read() as conn:
        owned(
            queries.get_prompt(conn, prompt_id), principal, forbidden=forbidden, not_found=not_found
        )
        groups = queries.score_groups(conn, prompt_id)
    return stats_json(prompt_id, groups)


def prompt_logs(
    db: Database,
    principal: Principal,
    prompt_id: str,
    page: PageRequest | None,
    *,
    forbidden: str,
    not_found: str,
) -> Listing:
    """The prompt's logs, oldest first."""
    with db.read() as conn:
        owned(
            queries.get_prompt(conn, prompt_id), principal, forbidden=forbidden, not_found=not_found
        )
        listing = queries.list_prompt_logs(conn, prompt_id, page)
    return with_calls(db, listing)


def all_logs(db: Database, principal: Principal, page: PageRequest | None) -> Listing:
    """The logs of every prompt the caller owns, oldest first."""
    with db.read() as conn:
        listing = queries.list_logs(conn, principal.user_id, page)
    return with_calls(db, listing)


def with_calls(db: Database, listing: Listing) -> Listing:
    """Logs made from an app's LLM call, with that call's figures (``call_*``) while it is
    stored: calls live in ``generations`` of the SQL database, or of ClickHouse with
    ``LOGHARBOR_EVENTS_URL``, and no join reaches the latter. The score and notes are the
    log's own, in the SQL database either way."""
    linked = [row["generation_id"] for row in listing.rows if row.get("generation_id")]
    figures = llm_queries.call_figures(record_reads(db), linked)
    rows: list[Mapping[Any, Any]] = []
    for row in listing.rows:
        call = figures.get(row.get("generation_id") or "")
        if call is None:
            rows.append(row)
            continue
        rows.append({**row, **{"call_" + key: value for key, value in call.items()}})
    return Listing(rows, listing.total)


# --- labels, and what apps fetch by -----------------------------------------------------------


def check_label(label: str) -> None:
    if not re.fullmatch(LABEL_PATTERN, label):
        raise BadRequest(LABEL_INVALID, field_errors={"label": LABEL_INVALID})


def _locked(
    conn: Connection, principal: Principal, prompt_id: str, *, forbidden: str, not_found: str
) -> RowMapping:
    # Locked: a PATCH cannot add a version, nor a delete remove the prompt, while labels move.
    row = queries.get_prompt(conn, prompt_id, lock="update")
    return owned(row, principal, forbidden=forbidden, not_found=not_found)


def set_label(
    db: Database,
    principal: Principal,
    prompt_id: str,
    label: str,
    version: int,
    *,
    forbidden: str,
    not_found: str,
) -> None:
    """Point ``label`` at an existing ``version`` of the prompt, creating or moving it."""
    with db.write() as conn:
        prompt = _locked(conn, principal, prompt_id, forbidden=forbidden, not_found=not_found)
        if version > prompt["version"]:
            raise BadRequest(VERSION_NOT_FOUND, field_errors={"version": VERSION_NOT_FOUND})
        queries.set_label(conn, prompt_id, label, version)


def delete_label(
    db: Database,
    principal: Principal,
    prompt_id: str,
    label: str,
    *,
    forbidden: str,
    not_found: str,
) -> None:
    with db.write() as conn:
        _locked(conn, principal, prompt_id, forbidden=forbidden, not_found=not_found)
        if not queries.delete_label(conn, prompt_id, label):
            raise NotFound(LABEL_NOT_FOUND)


def resolve_prompt(
    db: Database,
    principal: Principal,
    *,
    prompt_id: str | None,
    title: str | None,
    label: str | None,
    not_found: str,
) -> dict[str, Any]:
    """One of the caller's prompts (by id, or by exact title) at the version ``label`` points
    at, or at its current version. The caller may be an ingest key: its owner's prompts."""
    with db.read() as conn:
        if prompt_id is not None:
            prompt = queries.get_prompt(conn, prompt_id)
        else:
            prompt = queries.find_prompt_by_title(conn, principal.user_id, title or "")
        # Someone else's prompt is not even acknowledged: ingest keys are spread across apps.
        if prompt is None or prompt["owner_id"] != principal.user_id:
            raise NotFound(not_found)
        number = prompt["version"]
        if label is not None:
            labelled = queries.label_version(conn, prompt["id"], label)
            if labelled is None:
                raise NotFound(LABEL_NOT_FOUND)
            number = labelled
        version = queries.get_version(conn, prompt, number)
        labels = queries.labels_by_version(conn, prompt["id"]).get(number, [])
    if version is None:  # a label is only ever set to an existing version
        raise NotFound(VERSION_NOT_FOUND)
    return resolved_json(prompt["id"], version, labels)


def forget_prompt_of_calls(db: Database, prompt_id: str) -> None:
    """A deleted prompt's LLM calls keep their figures but name no prompt any more: the SQL
    database's foreign key does that for its calls, a mutation for those on ClickHouse."""
    if db.events is not None:
        llm_queries.forget_prompt_on_events(db.events, prompt_id)
