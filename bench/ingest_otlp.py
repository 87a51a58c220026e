# ruff: noqa: E501  (long result lines and Lua read better unwrapped)
"""OTLP/HTTP trace ingest, spans/s, against LogHarbor's own JSON batch ingest in the same run.

What is sent: batches of 512 HTTP SERVER spans, as the SDK's BatchSpanProcessor exports them.
The spans are real ``opentelemetry-sdk`` spans (kind SERVER, the stable HTTP semantic-convention
attributes ``http.request.method``, ``http.response.status_code``, ``url.path``, ``url.scheme``,
``server.address``, ``http.route``), encoded by the SDK's own
``opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans`` into the
``ExportTraceServiceRequest`` the OTLP/HTTP exporter posts (protobuf, no gzip). Every request
carries fresh random trace and span ids (set in that encoded message, then serialized, all
before the clock starts): the server derives each record's id from its trace and span ids, so
bytes sent twice would be stored once and cost less. wrk cycles through the prepared bodies and
reports if it ever had to reuse one (``wraps``; such a run is not a valid figure).

Baseline, same run, same server, same database: ``POST /api/v1/ingest`` (LogHarbor's JSON batch
endpoint) with the same 512 exchanges as compose bodies (domain, pathname, method, status,
elapsed time, route template, trace and span ids; no headers or bodies, as the spans carry none).
Both authenticate with the same ingest key (``Authorization: Bearer lhk_...``), both through wrk
with 8 connections against ``logharbor.serving`` with 2 workers (what ``logharbor serve
--workers 2`` runs), interleaved run by run (batch, OTLP, batch, OTLP, ...), median of 3 runs.
Target: OTLP spans/s >= 80 % of the batch records/s.

Optional peer (``--phoenix /path/to/python``, a separate venv with ``arize-phoenix``): one
Phoenix server on SQLite gets the same protobuf bodies at its ``/v1/traces``; the figure is how
fast it *persists* them (its span table polled until every span is in).

Usage: python bench/ingest_otlp.py [--db sqlite,postgresql] [--seconds 10] [--runs 3] [--phoenix PY]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import (
    SECRET,
    databases,
    free_port,
    lua_script,
    machine,
    median_run,
    now_text,
    seed,
    server,
    wrk,
    wrk_available,
)

SPANS = 512  # the BatchSpanProcessor's default max_export_batch_size
THREADS = 2  # wrk threads; each reads its own file of bodies
# A batch of 512 may take over wrk's default 2 s on a loaded box; both kinds get the same limit.
TIMEOUT = "10s"
DOMAIN = "api.example.com"
# (method, route, status weight table) for the spans: a small API's mix.
ROUTES = (
    ("GET", "/api/items/{id}", "/api/items/{}"),
    ("GET", "/api/orders/{id}", "/api/orders/{}"),
    ("POST", "/api/orders", "/api/orders"),
    ("GET", "/api/users/{id}/cart", "/api/users/{}/cart"),
    ("PUT", "/api/items/{id}", "/api/items/{}"),
    ("GET", "/health", "/health"),
)


def load() -> str:
    with open("/proc/loadavg") as f:
        return "load " + " ".join(f.read().split()[:3])


def sdk_spans(n: int) -> list:
    """``n`` finished SDK spans of HTTP SERVER requests (stable HTTP semantic conventions)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "bench-api", "service.version": "1.0"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("opentelemetry.instrumentation.asgi", "0.66b2")
    now = time.time_ns()
    for i in range(n):
        method, route, path = ROUTES[i % len(ROUTES)]
        status = 500 if i % 50 == 7 else 404 if i % 20 == 3 else (201 if method == "POST" else 200)
        start = now + i * 1_000_000
        span = tracer.start_span(
            f"{method} {route}",
            kind=SpanKind.SERVER,
            start_time=start,
            attributes={
                "http.request.method": method,
                "http.response.status_code": status,
                "url.path": path.format(i % 97),
                "url.scheme": "https",
                "server.address": DOMAIN,
                "http.route": route,
            },
        )
        span.end(end_time=start + int((3 + (i * 7919) % 250) * 1_000_000))  # 3-252 ms
    provider.shutdown()
    spans = list(exporter.get_finished_spans())
    assert len(spans) == n
    return spans


def compose_records(message) -> list[dict]:
    """The same exchanges as compose bodies (read back from the encoded message)."""
    out = []
    for group in message.resource_spans:
        for scope in group.scope_spans:
            for span in scope.spans:
                attrs = {a.key: a.value for a in span.attributes}
                out.append(
                    {
                        "domainUrl": f"{attrs['url.scheme'].string_value}://{attrs['server.address'].string_value}",
                        "pathnameUrl": attrs["url.path"].string_value,
                        "status": attrs["http.response.status_code"].int_value,
                        "protocol": "HTTPS",
                        "method": attrs["http.request.method"].string_value,
                        "elapsedTime": (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6,
                        "requestHeaders": None,
                        "responseHeaders": None,
                        "routeTemplate": attrs["http.route"].string_value,
                        "traceId": span.trace_id.hex(),
                        "spanId": span.span_id.hex(),
                    }
                )
    return out


class Bodies:
    """Serialized export requests of the encoded template, each with fresh random ids."""

    def __init__(self, message) -> None:
        self.message = message
        self.spans = [s for g in message.resource_spans for sc in g.scope_spans for s in sc.spans]
        self.times = [(s.start_time_unix_nano, s.end_time_unix_nano) for s in self.spans]
        self.made = 0

    def one(self) -> bytes:
        # Each body's spans come later than the last body's, as a live app's do (an hour ago
        # onwards, so that nothing is in the future): every body reusing the template's start
        # times would give records of the same few milliseconds, whose time-ordered ids then
        # land all over the primary-key index instead of at its end.
        shift = -3600 * 10**9 + self.made * len(self.spans) * 1_000_000
        for span, (start, end) in zip(self.spans, self.times, strict=True):
            span.trace_id = os.urandom(16)
            span.span_id = os.urandom(8)
            span.start_time_unix_nano = start + shift
            span.end_time_unix_nano = end + shift
        self.made += 1
        # What the OTLP/HTTP exporter sends: SerializePartialToString of the encoder's message.
        return self.message.SerializePartialToString()

    def write(self, prefix: Path, count: int) -> None:
        """``count`` bodies split over one file per wrk thread (10-digit length, then bytes)."""
        per = math.ceil(count / THREADS)
        for t in range(1, THREADS + 1):
            with open(f"{prefix}{t}.bin", "wb") as f:
                for _ in range(per):
                    body = self.one()
                    f.write(b"%010d" % len(body))
                    f.write(body)


def otlp_lua(path: Path, prefix: Path, key: str) -> Path:
    path.write_text(
        f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-protobuf"
wrk.headers["Authorization"] = "Bearer {key}"
local counter = 0
local threads = {{}}
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end
function init(args)
  local f = assert(io.open("{prefix}" .. tid .. ".bin", "rb"))
  local data = f:read("*a")
  f:close()
  bodies = {{}}
  local pos = 1
  while pos <= #data do
    local len = tonumber(data:sub(pos, pos + 9))
    bodies[#bodies + 1] = data:sub(pos + 10, pos + 9 + len)
    pos = pos + 10 + len
  end
  data = nil
  i = 0
  wraps = 0
end
function request()
  i = i + 1
  if i > #bodies then i = 1; wraps = wraps + 1 end
  return wrk.format(nil, nil, nil, bodies[i])
end
done = function(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do w = w + t:get("wraps") end
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f reqs=%d non2xx=%d errs=%d wraps=%d\\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, w))
end
"""
    )
    return path


def otlp_run(
    bodies: Bodies,
    prefix: Path,
    target: str,
    lua: Path,
    conns: int,
    seconds: int,
    spans_per_s: float,
) -> dict[str, float]:
    """One wrk run over fresh bodies: half as many again as ``spans_per_s`` needs."""
    bodies.write(prefix, math.ceil(spans_per_s * 1.5 * seconds / SPANS) + 8 * THREADS)
    return wrk(target, lua, conns, seconds, THREADS, TIMEOUT)


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def ingest_key(base: str, source_id: str, token: str) -> str:
    status, answer = post(
        f"{base}/traffic-source/{source_id}/ingest-keys",
        json.dumps({"name": "bench"}).encode(),
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert status == 201, (status, answer)
    return str(json.loads(answer)["key"])


def check_accepted(base: str, key: str, body: bytes, records: list[dict]) -> None:
    """One request of each kind before timing: every span and record stored, none refused."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    status, answer = post(
        base + "/v1/traces",
        body,
        {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"},
    )
    reply = ExportTraceServiceResponse.FromString(answer) if status == 200 else None
    if reply is None or reply.partial_success.rejected_spans:
        sys.exit(f"!! OTLP export refused: {status} {reply or answer[:300]!r}")
    status, answer = post(
        base + "/api/v1/ingest",
        json.dumps({"records": records}).encode(),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    if status != 201 or json.loads(answer)["stored"] != len(records):
        sys.exit(f"!! batch refused: {status} {answer[:300]!r}")


def stored_rows(url: str, source_id: str) -> int:
    from sqlalchemy import func, select

    from logharbor.db.engine import Database, make_engine
    from logharbor.db.tables import http_traffic

    db = Database(make_engine(url))
    try:
        with db.read() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(http_traffic)
                    .where(http_traffic.c.traffic_source_id == source_id)
                ).scalar_one()
            )
    finally:
        db.dispose()


def phoenix_peer(python: str, bodies: Bodies, requests: int, tmp: str) -> None:
    """Arize Phoenix (one process, SQLite) fed the same protobuf bodies: persisted spans/s."""
    import signal
    import sqlite3
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    work = Path(tmp) / "phoenix"
    work.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(work),
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),
        "PHOENIX_HOST": "127.0.0.1",
    }
    log = open(work / "server.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [python, "-m", "phoenix.server.main", "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.perf_counter()
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 180:
                    print(f"!! Phoenix did not start; see {work / 'server.log'}", flush=True)
                    return
                time.sleep(0.5)
        print(f"# phoenix up in {time.perf_counter() - t0:.0f}s", flush=True)
        payloads = [bodies.one() for _ in range(requests)]
        total = requests * SPANS
        db_files = list(work.glob("*.db"))
        if not db_files:
            print(f"!! no Phoenix SQLite file in {work}", flush=True)
            return

        def count() -> int:
            with sqlite3.connect(f"file:{db_files[0]}?mode=ro", uri=True, timeout=30) as c:
                return int(c.execute("SELECT count(*) FROM spans").fetchone()[0])

        start = count()
        headers = {"Content-Type": "application/x-protobuf"}
        sent_at = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:  # as a few exporters would
            statuses = list(pool.map(lambda b: post(base + "/v1/traces", b, headers)[0], payloads))
        accepted = time.perf_counter() - sent_at
        done = start
        deadline = sent_at + 900
        while done - start < total and time.perf_counter() < deadline:
            time.sleep(1)
            done = count()
        persisted = time.perf_counter() - sent_at
        print(
            f"RESULT phoenix spans={total} http_statuses={sorted(set(statuses))} accepted_in_s={accepted:.1f} "
            f"persisted={done - start} in_s={persisted:.1f} persisted_spans_per_s={(done - start) / persisted:.0f}",
            flush=True,
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--phoenix", help="python of a venv with arize-phoenix (optional peer)")
    ap.add_argument("--phoenix-requests", type=int, default=40)
    a = ap.parse_args()
    if not wrk_available():
        sys.exit(2)
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    print(
        f"# ingest_otlp: OTLP/HTTP protobuf, {SPANS} spans/request vs JSON batch {SPANS} records/request, c{a.connections}, {a.seconds}s x {a.runs}, 2 workers; {now_text()}; {machine()}",
        flush=True,
    )
    message = encode_spans(sdk_spans(SPANS))
    bodies = Bodies(message)
    sample = bodies.one()
    records = compose_records(message)  # the ids of the last body: distinct from later ones
    batch_body = json.dumps({"records": records})
    print(
        f"# bodies: protobuf {len(sample):,} bytes, JSON {len(batch_body):,} bytes per {SPANS} spans",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in databases(a.db):
            _, source_id, token = seed(url)
            env = {
                "LOGHARBOR_DATABASE_URL": url,
                "LOGHARBOR_SECRET_KEY": SECRET,
                "LOGHARBOR_DATA_DIR": tmp,
            }
            print(f"# {name}: {load()} before", flush=True)
            with server("logharbor.app:create_app_from_env", factory=True, env=env) as base:
                key = ingest_key(base, source_id, token)
                check_accepted(base, key, sample, records)
                json_lua = lua_script(Path(tmp) / "batch.lua", batch_body, key)
                prefix = Path(tmp) / f"otlp-{name}-"
                lua = otlp_lua(Path(tmp) / "otlp.lua", prefix, key)
                json_target, otlp_target = base + "/api/v1/ingest", base + "/v1/traces"

                warm_json = wrk(json_target, json_lua, a.connections, 3, THREADS, TIMEOUT)
                warm = otlp_run(bodies, prefix, otlp_target, lua, a.connections, 3, 40_000)
                guess = max(warm["rps"] * SPANS * 2, 20_000)
                json_runs, otlp_runs = [], []
                for _ in range(a.runs):
                    json_runs.append(
                        wrk(json_target, json_lua, a.connections, a.seconds, THREADS, TIMEOUT)
                    )
                    otlp_runs.append(
                        otlp_run(bodies, prefix, otlp_target, lua, a.connections, a.seconds, guess)
                    )
            print(f"# {name}: {load()} after", flush=True)
            sent = (
                sum(r["reqs"] for r in json_runs + otlp_runs) + warm["reqs"] + warm_json["reqs"] + 2
            ) * SPANS  # + the two checks
            stored = stored_rows(url, source_id)
            batch, otlp = median_run(json_runs), median_run(otlp_runs)
            batch_rate, otlp_rate = batch["rps"] * SPANS, otlp["rps"] * SPANS
            wraps = sum(r["wraps"] for r in otlp_runs) + warm["wraps"]
            print(
                f"RESULT batch_json db={name} records_per_s={batch_rate:.0f} (runs {batch['rps_min'] * SPANS:.0f}-{batch['rps_max'] * SPANS:.0f}) "
                f"p50_ms={batch['p50_ms']:.0f} p99_ms={batch['p99_ms']:.0f} non2xx={batch['non2xx']:.0f} errors={batch['errs']:.0f}",
                flush=True,
            )
            print(
                f"RESULT otlp db={name} spans_per_s={otlp_rate:.0f} (runs {otlp['rps_min'] * SPANS:.0f}-{otlp['rps_max'] * SPANS:.0f}) "
                f"p50_ms={otlp['p50_ms']:.0f} p99_ms={otlp['p99_ms']:.0f} non2xx={otlp['non2xx']:.0f} errors={otlp['errs']:.0f} "
                f"body_reuses={wraps:.0f} ratio_to_batch={otlp_rate / batch_rate:.1%} (target >= 80%)",
                flush=True,
            )
            print(
                f"RESULT stored db={name} rows={stored} answered_records={sent:.0f} ({'ok' if stored >= sent else 'MISSING ROWS'}; rows past the answered count were in flight when wrk stopped)",
                flush=True,
            )
        if a.phoenix:
            phoenix_peer(a.phoenix, bodies, a.phoenix_requests, tmp)


if __name__ == "__main__":
    main()
