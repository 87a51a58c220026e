# ruff: noqa: E501  (long result lines and SQL column lists read better unwrapped)
"""Shared bench helpers: throwaway databases, a seeded user and source, machine facts."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway PostgreSQL cluster the tests use

SECRET = "bench-secret-that-is-long-enough-for-hs256"


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def databases(which: str) -> Iterator[tuple[str, str]]:
    """Yield (name, url) of a fresh, migrated database per backend in ``which`` (sqlite,postgresql)."""
    from logharbor.db import migrate
    from logharbor.db.engine import make_engine

    wanted = which.split(",")
    with tempfile.TemporaryDirectory(prefix="lh-bench-") as tmp:
        cluster = None
        try:
            urls: list[tuple[str, str]] = []
            if "sqlite" in wanted:
                urls.append(("sqlite", f"sqlite:///{tmp}/bench.db"))
            if "postgresql" in wanted:
                from fixtures.postgres import start_cluster

                cluster = start_cluster()
                if cluster is None:
                    print("!! PostgreSQL binaries not found: skipping PostgreSQL", flush=True)
                else:
                    urls.append(("postgresql", cluster.url()))
            for name, url in urls:
                engine = make_engine(url)
                migrate.upgrade(engine)
                engine.dispose()
                yield name, url
        finally:
            if cluster is not None:
                cluster.stop()


def seed(url: str) -> tuple[str, str, str]:
    """A user, a traffic source and a token for them: (user_id, source_id, token)."""
    from sqlalchemy import insert

    from logharbor.auth import queries
    from logharbor.auth.tokens import issue_token
    from logharbor.common.ids import new_id
    from logharbor.common.timestamps import utcnow
    from logharbor.db.engine import Database, make_engine
    from logharbor.db.tables import traffic_sources

    db = Database(make_engine(url))
    with db.write() as conn:
        user = queries.create_user(
            conn, email=f"bench-{new_id()}@example.com", name="bench", password_hash="x"
        )
        source_id = new_id()
        now = utcnow()
        conn.execute(
            insert(traffic_sources).values(
                id=source_id,
                user_id=user["id"],
                name="bench",
                traffic_domain="https://api.example.com",
                created_at=now,
                updated_at=now,
            )
        )
    db.dispose()
    return str(user["id"]), source_id, issue_token(str(user["id"]), SECRET, 24 * 3600)


RECORD = {
    "domainUrl": "https://api.example.com",
    "pathnameUrl": "/v1/orders",
    "status": 201,
    "protocol": "HTTPS",
    "method": "POST",
    "trafficUserId": "c_48213",
    "elapsedTime": 137.25,
    "requestHeaders": {
        "content-type": "application/json",
        "accept": "application/json",
        "authorization": "Bearer abcdef",
        "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0 Safari/537.36",
        "x-request-id": "7f3c2a9e-5b1d-4c8e-9a2f-0d6b4e1c7a35",
    },
    "requestBody": {
        "customerId": "c_48213",
        "items": [{"sku": "SKU-1042", "qty": 2, "price": 19.99}],
        "currency": "EUR",
    },
    "queryParams": {"page": "1"},
    "responseHeaders": {
        "content-type": "application/json; charset=utf-8",
        "cache-control": "no-store",
    },
    "responseBody": {"id": "ord_9f2b7c1e", "status": "created", "total": 45.47, "currency": "EUR"},
}


def wrk_available() -> bool:
    import shutil

    if shutil.which("wrk") is None:
        print(
            "!! wrk is not installed. Install it with: apt-get install -y wrk   (nothing is installed silently)",
            flush=True,
        )
        return False
    return True


def lua_script(path: Path, body: str, token: str | None) -> Path:
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else ""
    path.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        + auth
        + f"wrk.body = [==[{body}]==]\n"
        + """done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f reqs=%d non2xx=%d errs=%d\\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""
    )
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(app: str, *, factory: bool, env: dict[str, str], workers: int = 2) -> Iterator[str]:
    """The same server and options for the baseline and for LogHarbor; yields the base URL."""
    import signal
    import subprocess
    import time
    import urllib.request

    port = free_port()
    # LogHarbor's own launcher (what `logharbor serve --workers N` runs): uvicorn workers, each
    # on its own SO_REUSEPORT socket. The baseline runs under it too: the same server.
    cmd = [
        sys.executable,
        "-m",
        "logharbor.serving",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    if factory:
        cmd.append("--factory")
    proc = subprocess.Popen(
        cmd, env={**os.environ, **env}, cwd=str(ROOT / "bench"), start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/health", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # the bare app answers 201/404-ish: it is up
            except OSError:
                time.sleep(0.1)
        time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median rate, plus the spread of all runs as rps_min / rps_max.

    Several runs because the box is shared and drifts (see shared/reference/limits-here.md).
    """
    ordered = sorted(runs, key=lambda run: run["rps"])
    return {
        **ordered[len(ordered) // 2],
        "rps_min": ordered[0]["rps"],
        "rps_max": ordered[-1]["rps"],
    }


def wrk(
    url: str, lua: Path, conns: int, seconds: int, threads: int = 2, timeout: str | None = None
) -> dict[str, float]:
    """One wrk run; ``timeout`` (e.g. "10s") replaces wrk's default of 2 s per request."""
    import subprocess

    extra = [f"--timeout={timeout}"] if timeout else []
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{conns}",
            f"-d{seconds}s",
            "--latency",
            *extra,
            "-s",
            str(lua),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    return {k: float(v) for k, v in (p.split("=") for p in line.split()[1:])}
