"""What the collector's ASGI middleware adds to each request, measured against the same app
without it in the same run.

In-process: the same ASGI app is called directly (no server, no network) N times bare and N
times wrapped, in interleaved blocks so that drift on a shared box hits both alike. Per-call
times give p50/p99; "added" is wrapped minus bare at the same percentile. The collector is real
and its sender thread runs (turning captures into masked JSON records, competing for the GIL as
it would in an app) but ships to a local sink instead of a server. Cases: bodies off, bodies on
(1 KiB JSON request and response), and bodies off with a sink that never returns (queue full:
the drop-oldest path).

Over HTTP (``--http``): two uvicorn servers on 127.0.0.1, one with the middleware, one without,
alternately driven by one httpx client; per-request p50/p99.

    .venv/bin/python bench/collector_overhead.py [--n 200000] [--http] [--append]

Target (issue 8): added p50 < 50 us and p99 < 500 us with bodies off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from logharbor.collector import Collector, LogHarborASGIMiddleware, SendResult

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

# About 1 KiB of JSON each way, with a field to mask in each.
REQUEST_BODY = json.dumps(
    {
        "user": "jane",
        "password": "hunter2",
        "items": [{"sku": f"A{n}", "qty": n} for n in range(34)],
    }
).encode()
RESPONSE_BODY = json.dumps(
    {"id": 42, "token": "abc", "lines": [{"sku": f"A{n}", "price": n * 1.5} for n in range(29)]}
).encode()
HEADERS = [
    (b"host", b"api.example.com"),
    (b"user-agent", b"bench/1.0"),
    (b"accept", b"application/json"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"authorization", b"Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig"),
    (b"cookie", b"session=abc; theme=dark"),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(REQUEST_BODY)).encode()),
    (b"x-request-id", b"0197548f-0e8e-7550-b283-f26fd98a9423"),
]
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "https",
    "path": "/api/v1/orders/42",
    "raw_path": b"/api/v1/orders/42",
    "query_string": b"page=2&api_key=k",
    "root_path": "",
    "headers": HEADERS,
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
}


async def app(scope: Any, receive: Any, send: Any) -> None:
    """A small JSON endpoint: reads the request body, answers 200 with a JSON body."""
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(RESPONSE_BODY)).encode()),
                (b"set-cookie", b"session=def; HttpOnly"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": RESPONSE_BODY})


class Sink:
    """A transport that encodes the batch as the HTTP one would, then drops it."""

    def __init__(self, stuck: bool = False) -> None:
        self.records = 0
        self.stuck = threading.Event() if stuck else None

    def send(self, records: Sequence[dict[str, Any]]) -> SendResult:
        if self.stuck is not None:
            self.stuck.wait()
        json.dumps({"records": list(records)}, separators=(",", ":"), default=str)
        self.records += len(records)
        return SendResult(sent=len(records))

    def close(self) -> None:
        if self.stuck is not None:
            self.stuck.set()


async def _time_calls(target: Any, n: int, out: list[int]) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": REQUEST_BODY, "more_body": False}

    async def send(message: Any) -> None:
        pass

    clock = time.perf_counter_ns
    for _ in range(n):
        scope = dict(SCOPE)  # a server builds a fresh scope per request
        started = clock()
        await target(scope, receive, send)
        out.append(clock() - started)


def quantile(values: list[int], q: float) -> float:
    """The q-th percentile in microseconds (q may be fractional: 99.9)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100.0))] / 1000.0


def in_process(n: int, capture_bodies: bool, stuck: bool) -> dict[str, float]:
    sink = Sink(stuck=stuck)
    collector = Collector(transport=sink, max_queue=10_000, batch_size=100, flush_interval=1.0)
    wrapped = LogHarborASGIMiddleware(app, collector, capture_bodies=capture_bodies)
    bare_times: list[int] = []
    wrapped_times: list[int] = []
    block = 2_000

    async def run() -> None:
        await _time_calls(app, 5_000, [])  # warm-up
        await _time_calls(wrapped, 5_000, [])
        done = 0
        while done < n:
            count = min(block, n - done)
            # Alternate which goes first so that neither always follows the other.
            first, second = (app, wrapped) if (done // block) % 2 == 0 else (wrapped, app)
            for target in (first, second):
                await _time_calls(target, count, bare_times if target is app else wrapped_times)
            done += count

    asyncio.run(run())
    stats = collector.stats()
    collector.close(timeout=5)
    result = {
        "bare_p50": quantile(bare_times, 50),
        "bare_p99": quantile(bare_times, 99),
        "with_p50": quantile(wrapped_times, 50),
        "with_p99": quantile(wrapped_times, 99),
        "bare_p999": quantile(bare_times, 99.9),
        "with_p999": quantile(wrapped_times, 99.9),
    }
    result["added_p50"] = result["with_p50"] - result["bare_p50"]
    result["added_p99"] = result["with_p99"] - result["bare_p99"]
    result["recorded"] = float(stats.accepted)
    result["dropped"] = float(stats.dropped)
    return result


def over_http(n: int) -> dict[str, float]:
    import httpx

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from collector.harness import serve_asgi

    collector = Collector(transport=Sink(), flush_interval=1.0)
    bare_times: list[int] = []
    wrapped_times: list[int] = []
    with (
        serve_asgi(app) as bare,
        serve_asgi(LogHarborASGIMiddleware(app, collector)) as wrapped,
        httpx.Client() as client,
    ):
        for url in (bare.url, wrapped.url):
            for _ in range(300):
                client.post(url + "/api/v1/orders/42", content=REQUEST_BODY)
        for i in range(n):
            order = (bare, wrapped) if i % 2 == 0 else (wrapped, bare)
            for served in order:
                started = time.perf_counter_ns()
                client.post(served.url + "/api/v1/orders/42?page=2", content=REQUEST_BODY)
                elapsed = time.perf_counter_ns() - started
                (bare_times if served is bare else wrapped_times).append(elapsed)
    collector.close()
    result = {
        "bare_p50": quantile(bare_times, 50),
        "bare_p99": quantile(bare_times, 99),
        "with_p50": quantile(wrapped_times, 50),
        "with_p99": quantile(wrapped_times, 99),
    }
    result["added_p50"] = result["with_p50"] - result["bare_p50"]
    result["added_p99"] = result["with_p99"] - result["bare_p99"]
    return result


def _line(name: str, r: dict[str, float]) -> str:
    if "with_p999" in r:
        tail = (
            f"{r['bare_p999']:.0f} / {r['with_p999']:.0f} | "
            f"{r['recorded']:,.0f} / {r['dropped']:,.0f}"
        )
    else:
        tail = "n/a | n/a"
    return (
        f"| {name} | {r['bare_p50']:.1f} / {r['bare_p99']:.1f} | "
        f"{r['with_p50']:.1f} / {r['with_p99']:.1f} | "
        f"**{r['added_p50']:+.1f} / {r['added_p99']:+.1f}** | {tail} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="calls per variant, in-process")
    parser.add_argument("--http", action="store_true", help="also measure over HTTP (uvicorn)")
    parser.add_argument("--http-n", type=int, default=3_000, help="requests per variant, HTTP")
    parser.add_argument("--append", action="store_true", help=f"append the table to {RESULTS}")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import machine, now_text

    rows = []
    cases = [
        ("in-process, bodies off", False, False),
        ("in-process, bodies on (1 KiB each way)", True, False),
        ("in-process, bodies off, sink stuck (queue full, drop-oldest)", False, True),
    ]
    for name, bodies, stuck in cases:
        result = in_process(args.n, bodies, stuck)
        print(
            f"RESULT {name}: bare p50 {result['bare_p50']:.2f} us p99 {result['bare_p99']:.2f} us"
            f" | with p50 {result['with_p50']:.2f} us p99 {result['with_p99']:.2f} us"
            f" | added p50 {result['added_p50']:+.2f} us p99 {result['added_p99']:+.2f} us"
            f" | p99.9 bare {result['bare_p999']:.1f} with {result['with_p999']:.1f} us"
            f" | recorded {result['recorded']:.0f} dropped {result['dropped']:.0f}",
            flush=True,
        )
        rows.append(_line(f"{name}, n={args.n:,}", result))
    if args.http:
        result = over_http(args.http_n)
        print(
            f"RESULT over HTTP (uvicorn, httpx, 1 connection): bare p50 {result['bare_p50']:.1f} us"
            f" p99 {result['bare_p99']:.1f} us | with p50 {result['with_p50']:.1f} us"
            f" p99 {result['with_p99']:.1f} us | added p50 {result['added_p50']:+.1f} us"
            f" p99 {result['added_p99']:+.1f} us",
            flush=True,
        )
        rows.append(_line(f"over HTTP (uvicorn + httpx, 1 conn), n={args.http_n:,}", result))
    if args.append:
        table = "\n".join(
            [
                "",
                f"## Collector overhead (issue 8) — {now_text()}, {machine()}",
                "",
                "`bench/collector_overhead.py`: per-request time of the same ASGI app without and "
                "with `LogHarborASGIMiddleware`, interleaved in one run; the collector's sender "
                "thread runs and encodes to a local sink. Microseconds.",
                "",
                "| case | bare p50 / p99 | with middleware p50 / p99 | added p50 / p99 "
                "| p99.9 bare / with | recorded / dropped |",
                "|---|---|---|---|---|---|",
                *rows,
                "",
                "Target: added p50 < 50 us, p99 < 500 us with bodies off.",
                "",
            ]
        )
        with RESULTS.open("a") as results:
            results.write(table)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
