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
- A two-character CJK term (most Chinese words) has no trigram, so ``grams`` lists each pair of
  adjacent CJK characters between spaces and the term is looked up there as `` xy `` (FTS5
  phrase or pg_trgm LIKE). Other one- or two-character terms are checked with ``LIKE`` on the
  rows the other terms (or the owner index) leave.

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
# Han, kana, Hangul (and their compatibility blocks), where words are written without spaces.
_CJK = (
    "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_CJK_RUN = re.compile(f"[{_CJK}]{{2,}}")
_CJK_PAIR = re.compile(f"[{_CJK}]{{2}}")


def fold(text: str) -> str:
    """Case- and accent-folded form of ``text`` (what is indexed and what terms are)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return unicodedata.normalize("NFC", _OPTIONAL_MARKS.sub("", decomposed))


def document(title: str, content: str, tags: Sequence[str]) -> dict[str, str]:
    """The ``prompt_search`` columns for a prompt.

    Content and tags are joined by newlines: a term never holds whitespace, so a match cannot
    straddle two tags or the end of the content. ``grams`` lists every pair of adjacent CJK
    characters once, each between spaces, so that a two-character CJK term (most Chinese
    words, many Japanese and Korean ones) is an indexed lookup of `` xy `` too.
    """
    fields = [fold(title), fold(content), *(fold(t) for t in tags)]
    pairs = {
        run[i : i + 2] for f in fields for run in _CJK_RUN.findall(f) for i in range(len(run) - 1)
    }
    return {
        "title": fields[0],
        "body": "\n".join(fields[1:]),
        "grams": f" {' '.join(sorted(pairs))} " if pairs else "",
    }


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


def _kind(term: str) -> str:
    if len(term) >= TRIGRAM:
        return "trigram"
    if _CJK_PAIR.fullmatch(term):
        return "pair"
    return "scan"


def uses_fts(dialect: str, terms: Sequence[str]) -> bool:
    return dialect == "sqlite" and any(_kind(t) != "scan" for t in terms)


def conditions(dialect: str, terms: Sequence[str]) -> list[ColumnElement[bool]]:
    """WHERE clauses (besides the owner) that select the prompts matching every term.

    On SQLite the FTS5 table must be joined on ``prompt_search.id`` when ``uses_fts``; there the
    indexable terms become one MATCH. On PostgreSQL each term is a LIKE that pg_trgm serves.
    Other terms (one character, or two that are not both CJK) are LIKE-checked on the rows the
    index leaves, or on the owner's rows.
    """
    s = prompt_search.c
    clauses: list[ColumnElement[bool]] = []
    substrings = [t for t in terms if _kind(t) == "scan"]
    if uses_fts(dialect, terms):
        phrases = [
            f"{{title body}} : {_fts_phrase(t)}"
            if _kind(t) == "trigram"
            else f"grams : {_fts_phrase(f' {t} ')}"
            for t in terms
            if _kind(t) != "scan"
        ]
        clauses.append(literal_column(FTS_TABLE).op("MATCH")(" AND ".join(phrases)))
    else:
        clauses.extend(_contains(s.grams, f" {t} ") for t in terms if _kind(t) == "pair")
        substrings += [t for t in terms if _kind(t) == "trigram"]
    clauses.extend(or_(_contains(s.title, t), _contains(s.body, t)) for t in substrings)
    return clauses


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
