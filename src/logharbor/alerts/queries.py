"""Every SELECT/INSERT/UPDATE/DELETE of the alerts feature. Functions take a Connection and never
commit: the route, the ingest transaction or the worker owns the transaction."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    RowMapping,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from logharbor.db.bulk import upsertable_insert
from logharbor.db.tables import (
    exceptions,
    traffic_sources,
    webhook_outbox,
    webhooks,
)

# --- webhooks -----------------------------------------------------------------------------------


def insert_webhook(conn: Connection, row: dict[str, Any]) -> RowMapping:
    conn.execute(insert(webhooks).values(row))
    return get_webhook(conn, row["id"])  # type: ignore[return-value]


def get_webhook(conn: Connection, webhook_id: str) -> RowMapping | None:
    return conn.execute(select(webhooks).where(webhooks.c.id == webhook_id)).mappings().first()


def list_webhooks(conn: Connection, source_id: str) -> Sequence[RowMapping]:
    query = (
        select(webhooks)
        .where(webhooks.c.traffic_source_id == source_id)
        .order_by(webhooks.c.created_at, webhooks.c.id)
    )
    return conn.execute(query).mappings().all()


def update_webhook(conn: Connection, webhook_id: str, changes: dict[str, Any]) -> RowMapping:
    conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(**changes))
    return get_webhook(conn, webhook_id)  # type: ignore[return-value]


def delete_webhook(conn: Connection, webhook_id: str) -> None:
    conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))


_MATCH_COLUMNS = (
    webhooks.c.id,
    webhooks.c.traffic_source_id,
    webhooks.c.level,
    webhooks.c.pathname_prefix,
    webhooks.c.status_min,
    webhooks.c.status_max,
)


def webhooks_for_sources(conn: Connection, source_ids: Iterable[str]) -> Sequence[RowMapping]:
    """What ingest needs to match records against webhooks (one indexed query per batch)."""
    return conn.execute(_WEBHOOKS_FOR_SOURCES, {"ids": sorted(set(source_ids))}).mappings().all()


# Built once (it runs for every group commit of the ingest path): constructing a statement
# with an IN list costs more than running it.
_WEBHOOKS_FOR_SOURCES = select(*_MATCH_COLUMNS).where(
    webhooks.c.traffic_source_id.in_(bindparam("ids", expanding=True))
)


def record_delivery(
    conn: Connection, webhook_id: str, *, status: str, error: str | None, at: datetime
) -> None:
    conn.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id)
        .values(last_delivery_status=status, last_delivery_error=error, last_delivery_at=at)
    )


# --- outbox -------------------------------------------------------------------------------------


@functools.cache
def _enqueue_statement(dialect: str) -> Any:
    # Built once per dialect: constructing an upsert costs more than running it on a hot path.
    stmt = upsertable_insert(dialect, webhook_outbox)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[webhook_outbox.c.webhook_id, webhook_outbox.c.pending_key],
        set_={
            "count": webhook_outbox.c.count + excluded.count,
            "last_at": case(
                (excluded.last_at > webhook_outbox.c.last_at, excluded.last_at),
                else_=webhook_outbox.c.last_at,
            ),
            "sample": excluded.sample,
            "exception_id": func.coalesce(excluded.exception_id, webhook_outbox.c.exception_id),
            "exception_state": case(
                # Plain comparisons, not IN: an expanding IN cannot be used with executemany.
                (
                    or_(excluded.exception_state == "new", excluded.exception_state == "reopened"),
                    excluded.exception_state,
                ),
                else_=func.coalesce(webhook_outbox.c.exception_state, excluded.exception_state),
            ),
        },
    )


def enqueue(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Add events to the pending row of their (webhook, group), creating it if there is none.

    A flood of one error therefore costs one row per webhook, whose ``count`` grows.
    """
    if rows:
        conn.execute(_enqueue_statement(conn.dialect.name), list(rows))


def _due(now: datetime, group_seconds: float) -> Any:
    grouped = now - timedelta(seconds=group_seconds)
    return or_(
        and_(webhook_outbox.c.state == "pending", webhook_outbox.c.next_attempt_at <= grouped),
        and_(
            webhook_outbox.c.state.in_(("retrying", "sending")),
            webhook_outbox.c.next_attempt_at <= now,
        ),
    )


def _webhook_free(now: datetime) -> Any:
    return and_(
        or_(webhooks.c.claimed_until.is_(None), webhooks.c.claimed_until < now),
        or_(webhooks.c.next_send_at.is_(None), webhooks.c.next_send_at <= now),
    )


def due_webhook_ids(conn: Connection, now: datetime, group_seconds: float, limit: int) -> list[str]:
    query = (
        select(webhook_outbox.c.webhook_id)
        .join(webhooks, webhooks.c.id == webhook_outbox.c.webhook_id)
        .where(_due(now, group_seconds), _webhook_free(now))
        .group_by(webhook_outbox.c.webhook_id)
        .order_by(func.min(webhook_outbox.c.next_attempt_at))
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def claim_webhook(
    conn: Connection, webhook_id: str, now: datetime, until: datetime, token: str
) -> bool:
    """Lease the webhook for one message. Several workers may race; the row count says who won
    (on PostgreSQL the loser's UPDATE waits, re-checks the WHERE and matches nothing)."""
    result = conn.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id, _webhook_free(now))
        .values(claimed_until=until, claim_token=token)
    )
    return result.rowcount == 1


def take_due_rows(
    conn: Connection, webhook_id: str, now: datetime, group_seconds: float, limit: int
) -> list[RowMapping]:
    """The rows of the next message, frozen: later events open a new pending row."""
    query = (
        select(webhook_outbox.c.id)
        .where(webhook_outbox.c.webhook_id == webhook_id, _due(now, group_seconds))
        .order_by(webhook_outbox.c.first_at, webhook_outbox.c.id)
        .limit(limit)
    )
    ids = list(conn.execute(query).scalars())
    if not ids:
        return []
    # RETURNING gives the rows as frozen: on PostgreSQL an ingest that bumped a count between
    # the SELECT and this UPDATE is waited for and included, so the message says the right count.
    frozen = conn.execute(
        update(webhook_outbox)
        .where(webhook_outbox.c.id.in_(ids))
        .values(state="sending", pending_key=None)
        .returning(*webhook_outbox.c)
    )
    return sorted(frozen.mappings().all(), key=lambda row: (row["first_at"], row["id"]))


def release_webhook(
    conn: Connection, webhook_id: str, token: str, *, next_send_at: datetime | None = None
) -> None:
    values: dict[str, Any] = {"claimed_until": None, "claim_token": None}
    if next_send_at is not None:
        values["next_send_at"] = next_send_at
    conn.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id, webhooks.c.claim_token == token)
        .values(**values)
    )


def mark_delivered(conn: Connection, row_ids: Sequence[str], now: datetime) -> None:
    conn.execute(
        update(webhook_outbox)
        .where(webhook_outbox.c.id.in_(list(row_ids)))
        .values(
            state="delivered",
            delivered_at=now,
            attempts=webhook_outbox.c.attempts + 1,
            last_error=None,
        )
    )


def mark_failed_attempt(
    conn: Connection,
    row_id: str,
    *,
    attempts: int,
    error: str,
    next_attempt_at: datetime | None,
) -> None:
    """``next_attempt_at`` None means the retry window is over: the row is given up."""
    values: dict[str, Any] = {"attempts": attempts, "last_error": error}
    if next_attempt_at is None:
        values["state"] = "failed"
    else:
        values.update(state="retrying", next_attempt_at=next_attempt_at)
    conn.execute(update(webhook_outbox).where(webhook_outbox.c.id == row_id).values(**values))


def source_names(conn: Connection, source_ids: Iterable[str]) -> dict[str, str]:
    query = select(traffic_sources.c.id, traffic_sources.c.name).where(
        traffic_sources.c.id.in_(sorted(set(source_ids)))
    )
    return {row.id: row.name for row in conn.execute(query)}


def list_deliveries(
    conn: Connection, webhook_id: str, *, offset: int, limit: int
) -> tuple[Sequence[RowMapping], int]:
    where = webhook_outbox.c.webhook_id == webhook_id
    total = conn.execute(select(func.count()).select_from(webhook_outbox).where(where)).scalar_one()
    query = (
        select(webhook_outbox)
        .where(where)
        .order_by(webhook_outbox.c.created_at.desc(), webhook_outbox.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return conn.execute(query).mappings().all(), int(total)


def prune_outbox(conn: Connection, before: datetime, limit: int) -> int:
    """Forget delivered and given-up rows older than ``before`` (at most ``limit``)."""
    ids = (
        select(webhook_outbox.c.id)
        .where(
            webhook_outbox.c.state.in_(("delivered", "failed")),
            webhook_outbox.c.created_at < before,
        )
        .limit(limit)
        .scalar_subquery()
    )
    result = conn.execute(delete(webhook_outbox).where(webhook_outbox.c.id.in_(ids)))
    return result.rowcount


# --- exceptions ---------------------------------------------------------------------------------


@functools.cache
def _exception_statement(dialect: str) -> Any:
    stmt = upsertable_insert(dialect, exceptions)
    excluded = stmt.excluded
    was_resolved = exceptions.c.status == "resolved"
    return stmt.on_conflict_do_update(
        index_elements=[exceptions.c.traffic_source_id, exceptions.c.fingerprint],
        set_={
            "count": exceptions.c.count + excluded.count,
            "last_seen_at": case(
                (excluded.last_seen_at > exceptions.c.last_seen_at, excluded.last_seen_at),
                else_=exceptions.c.last_seen_at,
            ),
            "sample": excluded.sample,
            "status": "open",
            "resolved_at": None,
            "reopened_at": case(
                (was_resolved, excluded.updated_at), else_=exceptions.c.reopened_at
            ),
            "times_reopened": exceptions.c.times_reopened + case((was_resolved, 1), else_=0),
            "updated_at": excluded.updated_at,
        },
    ).returning(exceptions.c.id, exceptions.c.count, exceptions.c.reopened_at)


def upsert_exception(conn: Connection, row: dict[str, Any]) -> tuple[str, str, int]:
    """Count ``row["count"]`` occurrences of a fingerprint; reopen it if it was resolved.

    Returns ``(exception id, "new" | "reopened" | "open", total count)``. The SET clause reads the
    row as it was before this statement, so "was it resolved?" is answered atomically.
    """
    now = row["updated_at"]
    result = conn.execute(_exception_statement(conn.dialect.name), row).mappings().one()
    if result["id"] == row["id"]:
        state = "new"
    elif result["reopened_at"] is not None and result["reopened_at"] == now:
        state = "reopened"
    else:
        state = "open"
    return str(result["id"]), state, int(result["count"])


EXCEPTION_SORTS = {
    "lastSeenAt": exceptions.c.last_seen_at,
    "firstSeenAt": exceptions.c.first_seen_at,
    "count": exceptions.c.count,
    "createdAt": exceptions.c.created_at,
}


def list_exceptions(
    conn: Connection,
    source_id: str,
    *,
    status: str | None,
    order: Any,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[Sequence[RowMapping], int]:
    where = [exceptions.c.traffic_source_id == source_id]
    if status is not None:
        where.append(exceptions.c.status == status)
    total = conn.execute(select(func.count()).select_from(exceptions).where(*where)).scalar_one()
    ordering = (order.desc(), exceptions.c.id.desc()) if descending else (order, exceptions.c.id)
    query = select(exceptions).where(*where).order_by(*ordering).offset(offset).limit(limit)
    return conn.execute(query).mappings().all(), int(total)


def get_exception(conn: Connection, source_id: str, exception_id: str) -> RowMapping | None:
    query = select(exceptions).where(
        exceptions.c.id == exception_id, exceptions.c.traffic_source_id == source_id
    )
    return conn.execute(query).mappings().first()


def set_exception_status(conn: Connection, exception_id: str, status: str, now: datetime) -> None:
    values: dict[str, Any] = {"status": status, "updated_at": now}
    match status:
        case "resolved":
            values["resolved_at"] = now
        case "open":
            values["resolved_at"] = None
        case _:
            raise ValueError(status)
    conn.execute(update(exceptions).where(exceptions.c.id == exception_id).values(**values))
