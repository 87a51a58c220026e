"""Every SELECT/INSERT/UPDATE/DELETE of prompts, their versions, logs and search rows.

Functions take a Connection and never commit: the route owns the transaction, so a prompt and its
search row (or a new version and the prompt it supersedes) are written together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, RowMapping, Select, delete, func, insert, select, update

from logharbor.common.ids import new_id
from logharbor.common.pagination import PageRequest
from logharbor.common.timestamps import utcnow
from logharbor.db.tables import (
    prompt_labels,
    prompt_logs,
    prompt_search,
    prompt_versions,
    prompts,
)
from logharbor.prompts import search

VERSIONED_FIELDS = ("title", "content", "model", "tags")


@dataclass(frozen=True)
class Listing:
    rows: Sequence[Mapping[Any, Any]]
    total: int | None  # only counted when a page was asked for


def _paged(conn: Connection, query: Select[Any], page: PageRequest | None) -> Listing:
    if page is None:
        return Listing(conn.execute(query).mappings().all(), None)
    total = conn.execute(
        select(func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    rows = conn.execute(query.limit(page.page_limit).offset(page.offset)).mappings().all()
    return Listing(rows, total)


# --- prompts --------------------------------------------------------------------------------


def create_prompt(
    conn: Connection, *, owner_id: str, title: str, content: str, model: str, tags: list[str]
) -> RowMapping:
    now = utcnow()
    prompt_id = new_id()
    row = {
        "id": prompt_id,
        "owner_id": owner_id,
        "title": title,
        "content": content,
        "model": model,
        "tags": tags,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    conn.execute(insert(prompts).values(row))
    conn.execute(
        insert(prompt_search).values(
            prompt_id=prompt_id, owner_id=owner_id, **search.document(title, content, tags)
        )
    )
    return get_prompt(conn, prompt_id)  # type: ignore[return-value]


def get_prompt(conn: Connection, prompt_id: str, *, lock: str | None = None) -> RowMapping | None:
    """One prompt, whoever owns it (callers tell 404 from 403).

    ``lock="update"`` serializes concurrent PATCHes of one prompt on PostgreSQL (version numbers);
    ``lock="share"`` keeps it from being deleted while a log is attached. SQLite writers are
    already serialized (BEGIN IMMEDIATE).
    """
    query = select(prompts).where(prompts.c.id == prompt_id)
    if lock == "update":
        query = query.with_for_update()
    elif lock == "share":
        query = query.with_for_update(read=True, key_share=True)
    return conn.execute(query).mappings().first()


def list_prompts(conn: Connection, owner_id: str, page: PageRequest | None) -> Listing:
    query = (
        select(prompts)
        .where(prompts.c.owner_id == owner_id)
        .order_by(prompts.c.created_at, prompts.c.id)
    )
    return _paged(conn, query, page)


def update_prompt(conn: Connection, current: RowMapping, changes: dict[str, Any]) -> RowMapping:
    """Apply a PATCH. A change of any field keeps the replaced state as a version.

    A PATCH that changes nothing (``{}`` or the same values) leaves the prompt, its version and
    ``updatedAt`` alone, so ``updated_at`` is always when the current version began.
    """
    changed = {name: value for name, value in changes.items() if current[name] != value}
    if not changed:
        return current
    conn.execute(
        insert(prompt_versions).values(
            id=new_id(),
            prompt_id=current["id"],
            version=current["version"],
            **{name: current[name] for name in VERSIONED_FIELDS},
            created_at=current["updated_at"],
        )
    )
    conn.execute(
        update(prompts)
        .where(prompts.c.id == current["id"])
        .values(**changed, version=current["version"] + 1, updated_at=utcnow())
    )
    merged = {**{name: current[name] for name in VERSIONED_FIELDS}, **changed}
    conn.execute(
        update(prompt_search)
        .where(prompt_search.c.prompt_id == current["id"])
        .values(**search.document(merged["title"], merged["content"], merged["tags"]))
    )
    return get_prompt(conn, current["id"])  # type: ignore[return-value]


def delete_prompt(conn: Connection, prompt_id: str) -> None:
    # Logs, versions and the search row go with it (ON DELETE CASCADE on both databases).
    conn.execute(delete(prompts).where(prompts.c.id == prompt_id))


def list_versions(conn: Connection, prompt_id: str) -> Sequence[RowMapping]:
    """Superseded versions, oldest first (the current one is the prompt row itself)."""
    query = (
        select(prompt_versions)
        .where(prompt_versions.c.prompt_id == prompt_id)
        .order_by(prompt_versions.c.version)
    )
    return conn.execute(query).mappings().all()


def get_version(conn: Connection, prompt: RowMapping, version: int) -> dict[str, Any] | None:
    """One version of ``prompt`` as its fields plus ``version`` and ``created_at`` (when it
    became the prompt's content); None if the prompt never had it."""
    if version == prompt["version"]:
        # The current version began when the prompt was last changed.
        return {**prompt, "created_at": prompt["updated_at"]}
    row = (
        conn.execute(
            select(prompt_versions).where(
                prompt_versions.c.prompt_id == prompt["id"], prompt_versions.c.version == version
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def find_prompt_by_title(conn: Connection, owner_id: str, title: str) -> RowMapping | None:
    """The owner's prompt with exactly this title; the oldest if several share it."""
    query = (
        select(prompts)
        .where(prompts.c.owner_id == owner_id, prompts.c.title == title)
        .order_by(prompts.c.created_at, prompts.c.id)
        .limit(1)
    )
    return conn.execute(query).mappings().first()


# --- labels ---------------------------------------------------------------------------------


def labels_by_version(conn: Connection, prompt_id: str) -> dict[int, list[str]]:
    query = (
        select(prompt_labels.c.version, prompt_labels.c.label)
        .where(prompt_labels.c.prompt_id == prompt_id)
        .order_by(prompt_labels.c.label)
    )
    out: dict[int, list[str]] = {}
    for row in conn.execute(query):
        out.setdefault(row.version, []).append(row.label)
    return out


def label_version(conn: Connection, prompt_id: str, label: str) -> int | None:
    query = select(prompt_labels.c.version).where(
        prompt_labels.c.prompt_id == prompt_id, prompt_labels.c.label == label
    )
    version: int | None = conn.execute(query).scalar()
    return version


def set_label(conn: Connection, prompt_id: str, label: str, version: int) -> None:
    """Point ``label`` at ``version``, creating it or moving it. The caller holds the prompt
    row locked, so the read-then-write cannot race another move of the same label."""
    now = utcnow()
    moved = conn.execute(
        update(prompt_labels)
        .where(prompt_labels.c.prompt_id == prompt_id, prompt_labels.c.label == label)
        .values(version=version, updated_at=now)
    )
    if not moved.rowcount:
        conn.execute(
            insert(prompt_labels).values(
                id=new_id(), prompt_id=prompt_id, label=label, version=version, updated_at=now
            )
        )


def delete_label(conn: Connection, prompt_id: str, label: str) -> bool:
    gone = conn.execute(
        delete(prompt_labels).where(
            prompt_labels.c.prompt_id == prompt_id, prompt_labels.c.label == label
        )
    )
    return bool(gone.rowcount)


# --- search ---------------------------------------------------------------------------------


def search_prompts(
    conn: Connection, owner_id: str, terms: Sequence[str], page: PageRequest | None
) -> Listing:
    """The owner's prompts matching every term, most title hits first, then insertion order."""
    dialect = conn.dialect.name
    s = prompt_search
    source: Any = s
    if search.uses_fts(dialect, terms):
        fts = search.fts_table()
        source = s.join(fts, fts.c.rowid == s.c.id)
    rank = search.title_rank(terms).label("rank")
    # prompt_search.id is assigned at creation and never changes: insertion order.
    matches = (
        select(s.c.id.label("sid"), s.c.prompt_id, rank)
        .select_from(source)
        .where(search.owner_clause(dialect, terms, owner_id), *search.conditions(dialect, terms))
        .order_by(rank.desc(), s.c.id)
    )
    total = None
    if page is not None:
        total = conn.execute(
            select(func.count()).select_from(matches.order_by(None).subquery())
        ).scalar_one()
        matches = matches.limit(page.page_limit).offset(page.offset)
    # Rank and order on the narrow rows first; only the page's prompts are then read in full.
    ranked = matches.subquery()
    query = (
        select(prompts)
        .join(ranked, prompts.c.id == ranked.c.prompt_id)
        .order_by(ranked.c.rank.desc(), ranked.c.sid)
    )
    return Listing(conn.execute(query).mappings().all(), total)


# --- logs -----------------------------------------------------------------------------------


def create_log(
    conn: Connection,
    *,
    prompt_id: str,
    prompt_version: int,
    output: str,
    model_used: str,
    notes: str | None,
    score: int | None,
) -> RowMapping:
    row = {
        "id": new_id(),
        "prompt_id": prompt_id,
        "prompt_version": prompt_version,
        "output": output,
        "notes": notes,
        "model_used": model_used,
        "score": score,
        "created_at": utcnow(),
    }
    conn.execute(insert(prompt_logs).values(row))
    return conn.execute(select(prompt_logs).where(prompt_logs.c.id == row["id"])).mappings().one()


def list_logs(conn: Connection, owner_id: str, page: PageRequest | None) -> Listing:
    """Logs of every prompt the owner has, oldest first."""
    query = (
        select(prompt_logs)
        .join(prompts, prompts.c.id == prompt_logs.c.prompt_id)
        .where(prompts.c.owner_id == owner_id)
        .order_by(prompt_logs.c.created_at, prompt_logs.c.id)
    )
    return _paged(conn, query, page)


def list_prompt_logs(conn: Connection, prompt_id: str, page: PageRequest | None) -> Listing:
    query = (
        select(prompt_logs)
        .where(prompt_logs.c.prompt_id == prompt_id)
        .order_by(prompt_logs.c.created_at, prompt_logs.c.id)
    )
    return _paged(conn, query, page)


def log_owner(conn: Connection, log_id: str) -> str | None:
    """The owner of the log's prompt, or None when there is no such log."""
    query = (
        select(prompts.c.owner_id)
        .select_from(prompt_logs.join(prompts, prompts.c.id == prompt_logs.c.prompt_id))
        .where(prompt_logs.c.id == log_id)
    )
    owner: str | None = conn.execute(query).scalar_one_or_none()
    return owner


def annotate_log(conn: Connection, log_id: str, changes: dict[str, Any]) -> RowMapping:
    if changes:
        conn.execute(update(prompt_logs).where(prompt_logs.c.id == log_id).values(changes))
    return conn.execute(select(prompt_logs).where(prompt_logs.c.id == log_id)).mappings().one()


def delete_log(conn: Connection, log_id: str) -> None:
    conn.execute(delete(prompt_logs).where(prompt_logs.c.id == log_id))


def score_groups(conn: Connection, prompt_id: str) -> Sequence[RowMapping]:
    """Log counts per (model, version, score): everything the stats need, in one GROUP BY."""
    l = prompt_logs.c  # noqa: E741
    query = (
        select(l.model_used, l.prompt_version, l.score, func.count().label("n"))
        .where(l.prompt_id == prompt_id)
        .group_by(l.model_used, l.prompt_version, l.score)
    )
    return conn.execute(query).mappings().all()
