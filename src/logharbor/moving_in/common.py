"""What both importers share: stable ids, the owner mapping, the per-kind summary."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, select

from logharbor.auth import queries as auth_queries
from logharbor.auth.schemas import EMAIL_RE
from logharbor.common.timestamps import parse_iso
from logharbor.db.engine import Database

# Rows per page (and per transaction): large enough that a commit's cost is shared, small
# enough that a page's rows and their JSON stay a few megabytes.
PAGE_SIZE = 500
# Refusals listed one by one in the summary; beyond these only the counts per reason.
LISTED_REFUSALS = 20
# A password hash no password verifies against (argon2 refuses it as malformed): an imported
# account can only be used after its owner sets a password.
UNUSABLE_PASSWORD = "!imported-set-a-password"

Advance = Callable[[int], None]


class ImportRefused(Exception):
    """The whole source is refused (unreadable, wrong shape, unmapped owner): nothing imported."""


def stable_id(created_at: datetime, *parts: str) -> str:
    """A UUIDv7 that is the same on every run for the same source row: 48 bits of its time in
    milliseconds, the rest from a hash of ``parts``. A rerun finds its rows already stored."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    millis = int(created_at.timestamp() * 1000) & 0xFFFF_FFFF_FFFF
    text = f"{millis:012x}7{digest[:3]}{'89ab'[int(digest[3], 16) & 3]}{digest[4:19]}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:32]}"


def timestamp(value: Any, what: str = "createdAt") -> datetime:
    """A source timestamp (ISO text, or a datetime from a database), as aware UTC, ms precision."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, str):
        try:
            moment = parse_iso(value)
        except ValueError:
            raise ValueError(f"{what}: not an ISO-8601 date-time ({value[:40]!r})") from None
    else:
        raise ValueError(f"{what}: missing")
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def existing_ids(conn: Connection, table: Table, ids: Iterable[str]) -> set[str]:
    wanted = list(ids)
    if not wanted:
        return set()
    return set(conn.execute(select(table.c.id).where(table.c.id.in_(wanted))).scalars())


def fresh_rows(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows not stored yet (by id), each once: the rest an earlier run already imported."""
    done = existing_ids(conn, table, (row["id"] for row in rows))
    fresh: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["id"] not in done:
            fresh.setdefault(row["id"], row)
    return list(fresh.values())


@dataclass
class Tally:
    """What became of one kind of row."""

    imported: int = 0
    skipped: int = 0  # already imported by an earlier run
    refused: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def refuse(self, row: str, reason: str) -> None:
        self.refused += 1
        self.reasons[reason.split(":", 1)[0] if ":" in reason else reason] += 1
        if len(self.examples) < LISTED_REFUSALS:
            self.examples.append(f"{row}: {reason}")


@dataclass
class Summary:
    source: str
    tallies: dict[str, Tally] = field(default_factory=dict)
    created_users: list[str] = field(default_factory=list)
    matched_users: int = 0

    def tally(self, kind: str) -> Tally:
        return self.tallies.setdefault(kind, Tally())

    def lines(self) -> list[str]:
        out = [f"import from {self.source}:"]
        width = max((len(kind) for kind in self.tallies), default=0)
        for kind, tally in self.tallies.items():
            out.append(
                f"  {kind:<{width}}  {tally.imported} imported, {tally.skipped} skipped "
                f"(already imported), {tally.refused} refused"
            )
        if self.matched_users or self.created_users:
            out.append(
                f"  owners: {self.matched_users} existing LogHarbor users, "
                f"{len(self.created_users)} created"
            )
        if self.created_users:
            out.append(
                "  created accounts have no usable password; each owner sets one with "
                "`logharbor user set-password --email EMAIL`:"
            )
            out.extend(f"    {email}" for email in self.created_users)
        for kind, tally in self.tallies.items():
            if not tally.refused:
                continue
            out.append(f"  refused {kind}:")
            out.extend(f"    {example}" for example in tally.examples)
            if tally.refused > len(tally.examples):
                counts = ", ".join(f"{why} ({n})" for why, n in tally.reasons.most_common(10))
                more = tally.refused - len(tally.examples)
                prefix = f"... {more} more; " if tally.examples else ""
                out.append(f"    {prefix}by reason: {counts}")
        return out


# --- owners -----------------------------------------------------------------------------------


def read_users_map(path: Path) -> dict[str, str]:
    """Original user id -> email, from a JSON object or ``id,email`` lines (CSV)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ImportRefused(f"cannot read the users map {path}: {exc.strerror}") from None
    try:
        loaded = json.loads(text)
    except ValueError:
        loaded = None
    pairs: list[Sequence[Any]]
    if isinstance(loaded, dict):
        pairs = list(loaded.items())
    elif loaded is None:
        pairs = [row for row in csv.reader(text.splitlines()) if row]
    else:
        raise ImportRefused(f"{path}: a users map is a JSON object or `id,email` lines")
    mapping: dict[str, str] = {}
    for number, pair in enumerate(pairs, 1):
        if len(pair) != 2 or not all(isinstance(item, str) for item in pair):
            raise ImportRefused(f"{path}, entry {number}: expected an id and an email")
        user_id, email = (item.strip() for item in pair)
        if not EMAIL_RE.match(email):
            raise ImportRefused(f"{path}, entry {number}: {email!r} is not an email address")
        mapping[user_id] = email.lower()
    return mapping


@dataclass
class Owners:
    """Maps the original system's user ids to LogHarbor users.

    Per user: the users map's entry, else ``--owner``, else the email the source itself knows.
    A missing LogHarbor user is created (with ``UNUSABLE_PASSWORD``) only when ``create`` is set.
    """

    owner: str | None = None
    users_map: dict[str, str] = field(default_factory=dict)
    create: bool = False
    _resolved: dict[str, str | None] = field(default_factory=dict)

    def email_for(self, original_id: str, known_email: str | None = None) -> str | None:
        return self.users_map.get(original_id) or self.owner or known_email

    def resolve(
        self,
        db: Database,
        original_ids: Sequence[str],
        summary: Summary,
        known: dict[str, tuple[str, str]] | None = None,
    ) -> dict[str, str | None]:
        """LogHarbor user id per original id (None: unmapped), creating users if asked.

        ``known`` is what the source says of its users: original id -> (email, name).
        """
        known = known or {}
        todo = [uid for uid in dict.fromkeys(original_ids) if uid not in self._resolved]
        if not todo:
            return self._resolved
        with db.write() as conn:
            for original_id in todo:
                email, name = known.get(original_id, (None, None))
                email = self.email_for(original_id, email)
                if email is None:
                    self._resolved[original_id] = None
                    continue
                user = auth_queries.get_user_by_email(conn, email)
                if user is None and self.create:
                    user = auth_queries.create_user(
                        conn,
                        email=email,
                        name=(name or email.split("@", 1)[0])[:200],
                        password_hash=UNUSABLE_PASSWORD,
                    )
                    summary.created_users.append(user["email"])
                elif user is not None:
                    summary.matched_users += 1
                self._resolved[original_id] = None if user is None else user["id"]
        return self._resolved

    def why_unmapped(self, original_id: str, known_email: str | None = None) -> str:
        email = self.email_for(original_id, known_email)
        if email is None:
            return f"owner {original_id}: no email for this user (use --owner or --users-map)"
        return f"owner {original_id}: no LogHarbor user {email} (use --create-users to create it)"
