"""Full-text search over a user's prompts, by index on both databases.

Matching is what PromptCrafter documents: every term must occur, as a case-insensitive
substring, in the title, the content or one of the tags ("photo" finds "photosynthesis"); prompts
whose title holds more of the terms come first, ties in insertion order.

How it stays fast and Unicode-aware:

- Text is folded in Python (``fold``) into ``prompt_search`` in the same transaction as every
  prompt write, and the query terms are folded the same way. Folding is casefold plus removal of
  the optional diacritics of Latin, Greek, Cyrillic, Hebrew and Arabic ("Café" → "cafe",
  "ΑΘΗΝΑ" → "αθηνα"); marks that change a letter elsewhere (Japanese dakuten, Devanagari vowel
  signs) stay. Doing it in Python gives identical results on SQLite and PostgreSQL and needs no
  ``unaccent`` extension.
- SQLite: an FTS5 table with the ``trigram`` tokenizer over ``prompt_search`` (external content,
  kept in step by triggers; migration 0002). A term of three or more characters is an FTS5
  phrase of its trigrams, i.e. an indexed substring match; any script works, CJK included.
- PostgreSQL: ``pg_trgm`` GIN indexes on the folded columns serve ``LIKE '%term%'``.
- Terms of one or two characters have no trigram; they are checked with ``LIKE`` on the rows the
  other terms (or the owner index) leave.

Terms are bound parameters: ``%``, ``_`` and ``\\`` are escaped for LIKE, and FTS5 receives each
term as one double-quoted string, so ``"``, ``*``, ``-``, ``OR`` or parentheses match literally.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Integer, case, cast, column, literal_column, or_, table
from sqlalchemy.sql.elements import BinaryExpression

from logharbor.db.tables import prompt_search

MAX_TERMS = 32
# Longer queries are refused rather than handed to LIKE (SQLite caps pattern length at 50 kB).
MAX_QUERY_CHARS = 1000
TRIGRAM = 3
FTS_TABLE = "prompt_search_fts"

# Combining marks that are optional accents in their scripts: generic diacritics (Latin, Greek,
# Cyrillic, Vietnamese), Hebrew points and Arabic harakat.
_OPTIONAL_MARKS = re.compile(
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
    "\u0610-\u061a\u064b-\u065f\u0670]"
)
_LIKE_SPECIAL = re.compile(r"([\\%_])")


def fold(text: str) -> str:
    """Case- and accent-folded form of ``text`` (what is indexed and what terms are)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return unicodedata.normalize("NFC", _OPTIONAL_MARKS.sub("", decomposed))


def document(title: str, content: str, tags: Sequence[str]) -> dict[str, str]:
    """The ``prompt_search`` columns for a prompt.

    Content and tags are joined by newlines: a term never holds whitespace, so a match cannot
    straddle two tags or the end of the content.
    """
    return {"title": fold(title), "body": "\n".join([fold(content), *(fold(t) for t in tags)])}


def parse_terms(query: str) -> list[str]:
    """The distinct folded terms of a query, in order; empty when there is nothing to search."""
    terms: list[str] = []
    for term in fold(query).split():
        if term not in terms:
            terms.append(term)
    return terms


def _like_pattern(term: str) -> str:
    return "%" + _LIKE_SPECIAL.sub(r"\\\1", term) + "%"


def _contains(col: Any, term: str) -> BinaryExpression[bool]:
    result: BinaryExpression[bool] = col.like(_like_pattern(term), escape="\\")
    return result


def _fts_phrase(term: str) -> str:
    # Inside an FTS5 string only '"' is special (doubled); the tokenizer turns it into trigrams.
    return '"' + term.replace('"', '""') + '"'


def fts_table() -> Any:
    return table(FTS_TABLE, column("rowid"))


def conditions(dialect: str, terms: Sequence[str]) -> list[ColumnElement[bool]]:
    """WHERE clauses (besides the owner) that select the prompts matching every term.

    On SQLite the FTS5 table must be joined on ``prompt_search.id`` when the first clause refers
    to it (``uses_fts``).
    """
    s = prompt_search.c
    clauses: list[ColumnElement[bool]] = []
    if uses_fts(dialect, terms):
        match = " AND ".join(_fts_phrase(t) for t in terms if len(t) >= TRIGRAM)
        clauses.append(literal_column(FTS_TABLE).op("MATCH")(match))
        short = [t for t in terms if len(t) < TRIGRAM]
    else:
        short = list(terms)
    clauses.extend(or_(_contains(s.title, t), _contains(s.body, t)) for t in short)
    return clauses


def uses_fts(dialect: str, terms: Sequence[str]) -> bool:
    return dialect == "sqlite" and any(len(t) >= TRIGRAM for t in terms)


def title_rank(terms: Sequence[str]) -> ColumnElement[int]:
    """How many of the terms occur in the title (higher ranks first)."""
    hits = [cast(case((_contains(prompt_search.c.title, t), 1), else_=0), Integer) for t in terms]
    total: ColumnElement[int] = hits[0]
    for hit in hits[1:]:
        total = total + hit
    return total


def owner_clause(dialect: str, terms: Sequence[str], owner_id: str) -> ColumnElement[bool]:
    """Restrict to one owner's prompts.

    With FTS5 the index must drive: SQLite's planner, lacking statistics, prefers the owner index
    and then re-runs the MATCH for every one of the owner's rows (seconds at 100k prompts).
    ``owner_id || ''`` is SQLite's documented way to keep a term from using an index.
    """
    if uses_fts(dialect, terms):
        return (prompt_search.c.owner_id + "") == owner_id
    return prompt_search.c.owner_id == owner_id
