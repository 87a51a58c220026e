# ruff: noqa: E501
"""``logharbor serve --workers 2``'s launcher (logharbor.serving) against uvicorn's own ``--workers``.

The problem the launcher exists for: a client that opens its keep-alive connections all at once
(wrk -c8 here, as a proxy's pool or a restarted collector fleet does) against workers that
share one listening socket can land most of them on one worker while the other idles. Both
servers run the same CPU-bound app (``cpu_asgi.py``, ~1 ms per request, so the workers and not
the client set the pace) with the same uvicorn options; the runs alternate, ``--rounds`` each.

    python bench/serving_workers.py [--rounds 5] [--seconds 6]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import free_port, machine, now_text

BENCH = Path(__file__).resolve().parent


def start(kind: str, port: int) -> subprocess.Popen[bytes]:
    common = [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
        "--log-level",
        "warning",
    ]
    if kind == "logharbor.serving":
        cmd = [sys.executable, "-m", "logharbor.serving", "cpu_asgi:app", *common]
    else:
        cmd = [sys.executable, "-m", "uvicorn", "cpu_asgi:app", *common, "--no-access-log"]
    return subprocess.Popen(cmd, cwd=BENCH, start_new_session=True)


def wait_up(port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("server did not start") from None
            time.sleep(0.1)


def wrk(port: int, seconds: int) -> tuple[float, float]:
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    print(f"# {now_text()} {machine()} load {os.getloadavg()[0]:.2f}")
    results: dict[str, list[tuple[float, float]]] = {
        "logharbor.serving": [],
        "uvicorn --workers": [],
    }
    for round_no in range(args.rounds):
        for kind in results:
            port = free_port()
            proc = start(kind, port)
            try:
                wait_up(port)
                rps, p99 = wrk(port, args.seconds)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(60)
            results[kind].append((rps, p99))
            print(f"round {round_no + 1} {kind}: {rps:,.0f} req/s, p99 {p99:.1f} ms", flush=True)
    for kind, runs in results.items():
        rps = sorted(r for r, _ in runs)
        p99 = sorted(p for _, p in runs)
        print(
            f"RESULT serving {kind}: median {statistics.median(rps):,.0f} req/s "
            f"(min {rps[0]:,.0f}, max {rps[-1]:,.0f}), p99 median {statistics.median(p99):.1f} ms "
            f"(max {p99[-1]:.1f})"
        )


if __name__ == "__main__":
    main()
