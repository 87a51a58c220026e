"""What the PromptCrafter API and the web UI both do with one prompt: read it under the
ownership rule, its versions, its logs and its scores. Each takes the sentences to answer with,
because every PromptCrafter endpoint documents its own (routes.py) and the pages speak plainly.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping

from logharbor.auth.deps import Principal
from logharbor.common.errors import Forbidden, NotFound
from logharbor.common.pagination import PageRequest
from logharbor.db.engine import Database
from logharbor.prompts import queries
from logharbor.prompts.queries import Listing
from logharbor.prompts.schemas import stats_json, version_json


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
        return queries.list_prompt_logs(conn, prompt_id, page)
