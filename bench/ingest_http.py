# ruff: noqa: E501  (long result lines and SQL column lists read better unwrapped)
"""Single-record compose: throughput and p99 at 64 connections vs a bare ASGI app returning 201.

Also measured, on SQLite: the compose *ceiling* (``compose_ceiling.py``), LogHarbor's own app
validating and normalizing the same body and storing nothing: no storage design could beat it.

Both run under the same server (``logharbor.serving``: 2 uvicorn workers with uvloop and httptools,
each on its own SO_REUSEPORT socket, no access log); the load
generator is wrk, a separate C program. LogHarbor stores every record (request, response, traffic
row, rollups, alert hooks) through its group-commit writer before answering.

Each figure is the median of ``--runs`` runs (3), with the slowest and fastest beside it.

Usage: python bench/ingest_http.py [--db sqlite,postgresql] [--seconds 10] [--workers 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import (
    RECORD,
    SECRET,
    databases,
    lua_script,
    machine,
    median_run,
    now_text,
    seed,
    server,
    wrk,
    wrk_available,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if not wrk_available():
        sys.exit(2)
    print(
        f"# ingest_http: compose, c64, {a.seconds}s, {a.workers} workers; {now_text()}; {machine()}",
        flush=True,
    )
    body = json.dumps(RECORD)
    with tempfile.TemporaryDirectory() as tmp:
        with server("bare_asgi:app", factory=False, env={}, workers=a.workers) as base:
            lua = lua_script(Path(tmp) / "bare.lua", body, None)
            wrk(base + "/x", lua, 64, 3)  # warm-up
            bare = median_run([wrk(base + "/x", lua, 64, a.seconds) for _ in range(a.runs)])
        print(
            f"RESULT baseline bare_asgi rps={bare['rps']:.0f} (runs {bare['rps_min']:.0f}-{bare['rps_max']:.0f}) p99_ms={bare['p99_ms']:.1f}",
            flush=True,
        )
        for name, url in databases(a.db):
            _, source_id, token = seed(url)
            env = {
                "LOGHARBOR_DATABASE_URL": url,
                "LOGHARBOR_SECRET_KEY": SECRET,
                "LOGHARBOR_DATA_DIR": tmp,
            }
            if name == "sqlite":
                with server(
                    "compose_ceiling:create_app", factory=True, env=env, workers=a.workers
                ) as base:
                    lua = lua_script(Path(tmp) / "ceiling.lua", body, None)
                    wrk(base + "/ceiling", lua, 64, 3)
                    top = median_run(
                        [wrk(base + "/ceiling", lua, 64, a.seconds) for _ in range(a.runs)]
                    )
                print(
                    f"RESULT ceiling (stack + validation, no storage) rps={top['rps']:.0f} (runs {top['rps_min']:.0f}-{top['rps_max']:.0f}) p99_ms={top['p99_ms']:.1f} ratio_to_bare={top['rps'] / bare['rps']:.1%}",
                    flush=True,
                )
            with server(
                "logharbor.app:create_app_from_env", factory=True, env=env, workers=a.workers
            ) as base:
                lua = lua_script(Path(tmp) / "compose.lua", body, token)
                target = f"{base}/http-traffic-record/{source_id}"
                wrk(target, lua, 64, 3)
                got = median_run([wrk(target, lua, 64, a.seconds) for _ in range(a.runs)])
            print(
                f"RESULT compose db={name} rps={got['rps']:.0f} (runs {got['rps_min']:.0f}-{got['rps_max']:.0f}) p50_ms={got['p50_ms']:.1f} p99_ms={got['p99_ms']:.1f} "
                f"non2xx={got['non2xx']:.0f} errors={got['errs']:.0f} ratio_to_bare={got['rps'] / bare['rps']:.1%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
