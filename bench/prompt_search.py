"""Prompt search at 100,000 prompts for one user: p50/p95 of GET /search's query, both databases.

Data: one user with N prompts (default 100,000) and other users with N/5 prompts of noise.
Titles, contents and tags are drawn from a synthetic vocabulary with a Zipf-like word frequency,
plus a share of French (accents), Russian, Greek and Japanese prompts. Planted words give
queries of known selectivity. Rows are bulk-inserted with the same folding the API uses
(``search.document``); SQLite's FTS5 triggers and PostgreSQL's GIN indexes maintain themselves.

Measured: ``prompts.queries.search_prompts`` (the function the route calls, index included) in a
read transaction, per query, ``--runs`` times after one warm-up. Baseline, same run, same data:
the naive query a "LIKE scan" implementation would run - ``lower(title|content|tags) LIKE
'%term%'`` for every term over the user's prompts (it is also wrong for accents, but it is the
cost to beat). Also measured: creating one prompt (index maintenance included) vs a bare insert.

Usage: python bench/prompt_search.py [--prompts 100000] [--db sqlite,postgresql] [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Text, and_, case, cast, func, insert, or_, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway PostgreSQL cluster the tests use

from logharbor.auth import queries as auth_queries  # noqa: E402
from logharbor.common.ids import new_id  # noqa: E402
from logharbor.common.pagination import PageRequest  # noqa: E402
from logharbor.common.timestamps import utcnow  # noqa: E402
from logharbor.db import migrate  # noqa: E402
from logharbor.db.engine import Database, make_engine  # noqa: E402
from logharbor.db.tables import prompt_search, prompts  # noqa: E402
from logharbor.prompts import queries, search  # noqa: E402

SYLLABLES = ["ka", "lo", "mi", "ren", "tu", "sa", "vor", "pe", "di", "an", "el", "qu", "zo", "ni"]
FOREIGN = {
    "fr": [
        "le",
        "café",
        "est",
        "très",
        "élégant",
        "résumé",
        "déjà",
        "numéro",
        "façade",
        "à",
        "propos",
        "crème",
        "brûlée",
        "naïve",
    ],
    "ru": [
        "привет",
        "письмо",
        "клиенту",
        "ответ",
        "вопрос",
        "задача",
        "пример",
        "текст",
        "объясни",
        "кратко",
    ],
    "el": ["γεια", "σας", "ταξίδι", "Αθήνα", "οδηγός", "κείμενο", "ερώτηση", "απάντηση", "σύντομα"],
    "ja": ["東京タワー", "写真", "説明", "翻訳", "要約", "質問", "回答", "日本語", "文章"],
}
# Planted words: (word, share of the user's prompts that contain it).
PLANTED = [("zephyrine", 0.0001), ("quillwort", 0.01), ("marbleton", 0.01), ("lanternfish", 0.3)]

QUERIES: list[tuple[str, str, bool]] = [
    # (label, q, paginated)
    ("rare word (~10 hits)", "zephyrine", False),
    ("1% word (~1,000 hits)", "quillwort", False),
    ("two 1% words, AND", "quillwort marbleton", False),
    ("30% word, first page of 20", "lanternfish", True),
    ("substring of a word", "illwor", False),
    ("accent-folded (cafe)", "CAFE", False),
    ("Cyrillic", "ПИСЬМО", False),
    ("CJK 2 chars (scan path)", "写真", False),
    ("CJK 5 chars", "東京タワー", False),
    ("2-char Latin term (scan path)", "zq", False),
    ("no match", "xylophonist", False),
]


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                "?",
            )
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


@contextmanager
def database(backend: str, tmp: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp}/prompts.db"
        return
    from fixtures.postgres import start_cluster

    cluster = start_cluster()
    if cluster is None:
        raise SystemExit("PostgreSQL binaries (initdb, pg_ctl) not found")
    try:
        yield cluster.url()
    finally:
        cluster.stop()


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class Texts:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng)
        # Zipf-like: word i drawn with weight 1/(i+1).
        self.weights = [1 / (i + 1) for i in range(len(self.words))]

    def phrase(self, n: int) -> list[str]:
        return self.rng.choices(self.words, self.weights, k=n)

    def prompt(self) -> dict[str, Any]:
        rng = self.rng
        title = self.phrase(rng.randint(3, 7))
        content = self.phrase(rng.randint(30, 90))
        if rng.random() < 0.12:
            language = rng.choice(list(FOREIGN))
            foreign = rng.choices(FOREIGN[language], k=rng.randint(5, 20))
            content[rng.randrange(len(content)) :] = foreign
            if rng.random() < 0.3:
                title.append(rng.choice(FOREIGN[language]))
        for word, share in PLANTED:
            if rng.random() < share:
                target = title if rng.random() < 0.3 else content
                target.insert(rng.randrange(len(target) + 1), word)
        tags = self.phrase(rng.randint(0, 3))
        return {
            "title": " ".join(title)[:100].capitalize(),
            "content": " ".join(content),
            "model": rng.choice(["GPT-4o", "Claude", "Grok-3 Beta"]),
            "tags": tags,
        }


def load(db: Database, owner_id: str, count: int, texts: Texts, start: datetime) -> None:
    batch = 2000
    for offset in range(0, count, batch):
        prompt_rows, search_rows = [], []
        for i in range(offset, min(offset + batch, count)):
            fields = texts.prompt()
            pid = new_id()
            at = start + timedelta(seconds=i)
            prompt_rows.append(
                {
                    "id": pid,
                    "owner_id": owner_id,
                    **fields,
                    "version": 1,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            search_rows.append(
                {
                    "prompt_id": pid,
                    "owner_id": owner_id,
                    **search.document(fields["title"], fields["content"], fields["tags"]),
                }
            )
        with db.write() as conn:
            conn.execute(insert(prompts), prompt_rows)
            conn.execute(insert(prompt_search), search_rows)


def make_user(db: Database) -> str:
    with db.write() as conn:
        user = auth_queries.create_user(
            conn, email=f"bench-{new_id()}@example.com", name="bench", password_hash="x"
        )
    return str(user["id"])


def naive_search(conn: Connection, owner_id: str, q: str, page: PageRequest | None) -> int:
    """The baseline: the same answer (title hits first, a count when paged) by LIKE scans."""
    clauses, title_hits = [], []
    for term in q.lower().split():
        pattern = f"%{term}%"
        title = func.lower(prompts.c.title).like(pattern)
        clauses.append(
            or_(
                title,
                func.lower(prompts.c.content).like(pattern),
                func.lower(cast(prompts.c.tags, Text)).like(pattern),
            )
        )
        title_hits.append(case((title, 1), else_=0))
    where = [prompts.c.owner_id == owner_id, and_(*clauses)]
    query = (
        select(prompts)
        .where(*where)
        .order_by(sum(title_hits[1:], title_hits[0]).desc(), prompts.c.created_at, prompts.c.id)
    )
    if page is not None:
        conn.execute(select(func.count()).select_from(prompts).where(*where)).scalar_one()
        query = query.limit(page.page_limit)
    return len(conn.execute(query).all())


def timed(db: Database, fn: Callable[[Connection], int], runs: int) -> tuple[float, float, int]:
    with db.read() as conn:
        hits = fn(conn)  # warm-up
    samples = []
    for _ in range(runs):
        with db.read() as conn:
            began = time.perf_counter()
            fn(conn)
            samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, hits


def write_costs(db: Database, owner_id: str, texts: Texts, runs: int) -> tuple[float, float]:
    """p50 ms of creating a prompt through the API's query function vs. a bare INSERT."""
    indexed, bare = [], []
    for _ in range(runs):
        fields = texts.prompt()
        with db.write() as conn:
            began = time.perf_counter()
            queries.create_prompt(conn, owner_id=owner_id, **fields)
            indexed.append((time.perf_counter() - began) * 1000)
        with db.write() as conn:
            began = time.perf_counter()
            now = utcnow()
            conn.execute(
                insert(prompts).values(
                    id=new_id(),
                    owner_id=owner_id,
                    **fields,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
            bare.append((time.perf_counter() - began) * 1000)
    return statistics.median(indexed), statistics.median(bare)


def run(backend: str, count: int, runs: int) -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory(prefix="lh-bench-") as tmp, database(backend, tmp) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        db = Database(engine)
        texts = Texts(seed=42)
        owner = make_user(db)
        start = datetime(2025, 1, 1, tzinfo=UTC)
        began = time.perf_counter()
        load(db, owner, count, texts, start)
        for _n in range(5):  # noise: other users' prompts
            load(db, make_user(db), count // 25, texts, start)
        if backend == "postgresql":
            with db.write() as conn:
                conn.exec_driver_sql("ANALYZE")
        loaded = time.perf_counter() - began
        print(f"\n[{backend}] loaded {count:,} + {count // 5:,} noise prompts in {loaded:.0f} s")
        header = (
            f"{'query':34} {'hits':>7} {'p50 ms':>8} {'p95 ms':>8} | {'LIKE p50':>9} {'p95':>8}"
        )
        print(header)
        lines += [
            f"\n### {backend}: {count:,} prompts for one user (+{count // 5:,} noise)\n",
            "| query | hits | search p50 ms | p95 ms | LIKE-scan p50 ms | p95 ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for label, q, paginated in QUERIES:
            page = PageRequest(page=1, page_limit=20) if paginated else None
            terms = search.parse_terms(q)

            def indexed(conn: Connection, terms: list[str] = terms, page: Any = page) -> int:
                return len(queries.search_prompts(conn, owner, terms, page).rows)

            def naive(conn: Connection, q: str = q, page: Any = page) -> int:
                return naive_search(conn, owner, q, page)

            p50, p95, hits = timed(db, indexed, runs)
            b50, b95, _ = timed(db, naive, max(5, runs // 3))
            print(f"{label:34} {hits:7d} {p50:8.2f} {p95:8.2f} | {b50:9.2f} {b95:8.2f}")
            lines.append(
                f"| {label} (`{q}`) | {hits} | {p50:.2f} | {p95:.2f} | {b50:.2f} | {b95:.2f} |"
            )
        indexed, bare = write_costs(db, owner, texts, 50)
        print(f"create one prompt: {indexed:.2f} ms p50 with the search row, {bare:.2f} ms bare")
        lines.append(
            f"\nCreate one prompt (p50): {indexed:.2f} ms with its search row and index, "
            f"{bare:.2f} ms for a bare INSERT. Load: {loaded:.0f} s."
        )
        engine.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    print(machine())
    lines = [
        f"\n## Prompt search (bench/prompt_search.py) - {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"\nMachine: {machine()}. Runs per query: {args.runs} "
        f"(baseline: {max(5, args.runs // 3)}).",
        "Search = `prompts.queries.search_prompts` (FTS5 trigram / pg_trgm GIN over folded text); "
        "baseline = `lower(col) LIKE '%term%'` scan of the user's prompts, same data, same run.",
    ]
    for backend in args.db.split(","):
        lines += run(backend, args.prompts, args.runs)
    if not args.no_record:
        with open(ROOT / "bench" / "RESULTS.md", "a") as results:
            results.write("\n".join(lines) + "\n")
        print("\nappended to bench/RESULTS.md")


if __name__ == "__main__":
    main()
