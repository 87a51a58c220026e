"""``logharbor import promptcrafter db.json``: a PromptCrafter json-server data file.

Its shape (reference/promptcrafter-original.md §2.3): ``{"users": [...], "prompts": [...],
"logs": [...]}`` with ``_id`` fields, ``ownerId`` and ``promptId`` references and ISO times.
The file is streamed (ijson), never loaded whole: users first (their emails map owners), then
prompts, then logs, a page per transaction. What a prompt or log would need to be valid through
the API it must be here too (the same pydantic models check it); what is not is refused, with
the reason, and the rest goes on. Ids are derived from the original ids, so a second run finds
what the first stored and adds nothing twice.

Memory: the users and a map of original prompt id to LogHarbor id are kept (logs name their
prompt by original id); prompts and logs themselves pass a page at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import ijson
from pydantic import ValidationError
from sqlalchemy import insert

from logharbor.db.engine import Database
from logharbor.db.tables import prompt_logs, prompt_search, prompts
from logharbor.moving_in.common import (
    PAGE_SIZE,
    Advance,
    ImportRefused,
    Owners,
    Summary,
    fresh_rows,
    stable_id,
    timestamp,
)
from logharbor.prompts import search
from logharbor.prompts.schemas import LogIn, PromptIn

KINDS = ("users", "prompts", "logs")


def _items(handle: IO[bytes], kind: str) -> Iterator[Any]:
    handle.seek(0)
    return ijson.items(handle, f"{kind}.item", use_float=True)  # type: ignore[no-any-return]


def _pages(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    page: list[Any] = []
    for item in items:
        page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def _why(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "record"
    return f"{where}: {error['msg']}"


def _ref(item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("_id"), str):
        return str(item["_id"])[:80]
    return "(no _id)"


def count(path: Path) -> dict[str, int]:
    """Rows of each kind in the file (one streaming pass each), checking its shape."""
    totals = {}
    with _open(path) as handle:
        try:
            handle.seek(0)
            top = next(ijson.parse(handle))
            if top[1] != "start_map":
                raise ImportRefused(f"{path}: expected a JSON object with users, prompts, logs")
            for kind in KINDS:
                totals[kind] = sum(1 for _ in _items(handle, kind))
        except ijson.JSONError as exc:
            raise ImportRefused(f"{path} is not valid JSON ({exc})") from None
    if not totals["prompts"] and not totals["logs"]:
        raise ImportRefused(f"{path} holds no prompts and no logs (is it a PromptCrafter db.json?)")
    return totals


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise ImportRefused(f"cannot read {path}: {exc.strerror}") from None


def import_file(
    db: Database,
    path: Path,
    owners: Owners,
    *,
    advance: Advance = lambda n: None,
    page_size: int = PAGE_SIZE,
) -> Summary:
    count(path)  # refuse a broken file before anything is written
    summary = Summary(f"PromptCrafter file {path}")
    with _open(path) as handle:
        known: dict[str, tuple[str, str]] = {}
        for user in _items(handle, "users"):
            if isinstance(user, dict) and isinstance(user.get("_id"), str):
                email = user.get("email")
                name = user.get("name")
                known[user["_id"]] = (
                    email.strip().lower() if isinstance(email, str) else "",
                    name if isinstance(name, str) else "",
                )
            advance(1)
        known = {uid: (email, name) for uid, (email, name) in known.items() if email}
        prompt_ids: dict[str, str] = {}
        for page in _pages(_items(handle, "prompts"), page_size):
            _import_prompts(db, page, owners, known, prompt_ids, summary)
            advance(len(page))
        for page in _pages(_items(handle, "logs"), page_size):
            _import_logs(db, page, prompt_ids, summary)
            advance(len(page))
    return summary


def _import_prompts(
    db: Database,
    page: list[Any],
    owners: Owners,
    known: dict[str, tuple[str, str]],
    prompt_ids: dict[str, str],
    summary: Summary,
) -> None:
    tally = summary.tally("prompts")
    checked: list[tuple[str, Any, PromptIn]] = []
    for item in page:
        if not isinstance(item, dict) or not isinstance(item.get("_id"), str):
            tally.refuse(_ref(item), "_id: missing or not a string")
            continue
        if not isinstance(item.get("ownerId"), str):
            tally.refuse(_ref(item), "ownerId: missing or not a string")
            continue
        try:
            checked.append((item["_id"], item, PromptIn.model_validate(item)))
        except ValidationError as exc:
            tally.refuse(_ref(item), _why(exc))
    resolved = owners.resolve(db, [item["ownerId"] for _, item, _ in checked], summary, known)
    rows = []
    for original_id, item, prompt in checked:
        owner_id = resolved.get(item["ownerId"])
        if owner_id is None:
            known_email = known.get(item["ownerId"], (None, ""))[0]
            tally.refuse(original_id, owners.why_unmapped(item["ownerId"], known_email))
            continue
        try:
            created = timestamp(item.get("createdAt"))
            updated = timestamp(item.get("updatedAt", item.get("createdAt")), "updatedAt")
        except ValueError as exc:
            tally.refuse(original_id, str(exc))
            continue
        prompt_id = stable_id(created, "promptcrafter", "prompt", item["ownerId"], original_id)
        prompt_ids[original_id] = prompt_id
        rows.append(
            {
                "id": prompt_id,
                "owner_id": owner_id,
                "title": prompt.title,
                "content": prompt.content,
                "model": prompt.model,
                "tags": prompt.tags or [],
                "version": 1,
                "created_at": created,
                "updated_at": max(updated, created),
            }
        )
    with db.write() as conn:
        new = fresh_rows(conn, prompts, rows)
        tally.skipped += len(rows) - len(new)
        if new:
            conn.execute(insert(prompts), new)
            conn.execute(
                insert(prompt_search),
                [
                    {
                        "prompt_id": row["id"],
                        "owner_id": row["owner_id"],
                        **search.document(row["title"], row["content"], row["tags"]),
                    }
                    for row in new
                ],
            )
    tally.imported += len(new)


def _import_logs(
    db: Database, page: list[Any], prompt_ids: dict[str, str], summary: Summary
) -> None:
    tally = summary.tally("logs")
    rows = []
    for item in page:
        if not isinstance(item, dict) or not isinstance(item.get("_id"), str):
            tally.refuse(_ref(item), "_id: missing or not a string")
            continue
        try:
            log = LogIn.model_validate(item)
            created = timestamp(item.get("createdAt"))
        except ValidationError as exc:
            tally.refuse(item["_id"], _why(exc))
            continue
        except ValueError as exc:
            tally.refuse(item["_id"], str(exc))
            continue
        prompt_id = prompt_ids.get(log.promptId)
        if prompt_id is None:
            tally.refuse(item["_id"], f"promptId: prompt {log.promptId[:80]} was not imported")
            continue
        rows.append(
            {
                "id": stable_id(created, "promptcrafter", "log", log.promptId, item["_id"]),
                "prompt_id": prompt_id,
                "prompt_version": 1,
                "output": log.output,
                "notes": log.notes,
                "model_used": log.modelUsed,
                "score": log.score,
                "created_at": created,
            }
        )
    with db.write() as conn:
        new = fresh_rows(conn, prompt_logs, rows)
        tally.skipped += len(rows) - len(new)
        if new:
            conn.execute(insert(prompt_logs), new)
    tally.imported += len(new)
