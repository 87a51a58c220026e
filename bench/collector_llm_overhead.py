"""What the collector's LLM capture adds to each SDK call, against the same call without it in
the same run.

The real ``openai`` and ``anthropic`` SDKs call an in-process fake (the SDKs' own HTTP client
with a mock transport answering canned JSON or SSE bytes), so that the network does not drown
the figure. Each case alternates bare and captured calls one by one (the SDKs stay patched;
bare is the patch passing the call straight through, a None check), so that drift on a shared
box hits both alike. Every call runs under a request context as the middleware makes one (a trace
and a current request), bare or not, so the captured calls pay for naming their record. The
collector is real and its sender thread runs (building the spans with content, masking,
JSON), shipping to a sink instead of a server; its CPU per span is reported apart, measured
on its own. A streamed call is timed to its last chunk. Beside the wall-clock figures, the CPU
time of the calling thread per call (``time.thread_time_ns``): on a box shared with other
work, the wall clock also counts waiting for a core or for the GIL, and CPU time does not.

A streamed answer's chunks must reach the app with no added delay: the fake provider hands its
SSE body to the SDK one event at a time, noting when it hands each out, and the app notes when
each chunk reaches it; a chunk's delay is the difference (the SDK's parsing, and the capture's
share of it when captured), compared bare against captured.

    .venv/bin/python bench/collector_llm_overhead.py [--n 20000] [--append]

Target (issue 15): added p50 < 50 us and p99 < 500 us per call.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai

from logharbor.collector import (
    Collector,
    SendResult,
    current_request,
    llm,
    llm_anthropic,
    llm_openai,
    tracing,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, now_text

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
WORDS = ["Hello", " from", " the", " fake", " model."]
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Summarize this support ticket: the export fails with a 500."},
]
CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1767225600,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "".join(WORDS)},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 21, "completion_tokens": 5, "total_tokens": 26},
}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "".join(WORDS)}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 12, "output_tokens": 5},
}


def _sse(events: list[tuple[str | None, dict[str, Any] | str]]) -> bytes:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
    return "".join(out).encode()


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": choices,
        "usage": None,
        **extra,
    }


CHAT_STREAM = _sse(
    [(None, _chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}]))]
    + [(None, _chunk([{"index": 0, "delta": {"content": word}}])) for word in WORDS]
    + [(None, _chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))]
    + [(None, _chunk([], usage=CHAT["usage"])), (None, "[DONE]")]
)
MESSAGE_STREAM = _sse(
    [
        ("message_start", {"type": "message_start", "message": {**MESSAGE, "content": []}}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    + [
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": word},
            },
        )
        for word in WORDS
    ]
    + [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 5},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
)


def _events(body: bytes) -> list[bytes]:
    return [event + b"\n\n" for event in body.split(b"\n\n") if event]


CHAT_EVENTS = _events(CHAT_STREAM)
MESSAGE_EVENTS = _events(MESSAGE_STREAM)
# When the fake provider handed out each event of the stream being read, and when the app got
# each chunk (perf_counter_ns); reset by every streamed call.
SENT: list[int] = []
RECEIVED: list[int] = []


def _sent_one_by_one(events: list[bytes]) -> Iterator[bytes]:
    clock = time.perf_counter_ns
    for event in events:
        SENT.append(clock())
        yield event


def handler(request: httpx2.Request) -> httpx2.Response:
    # A real provider call waits on the network, and other threads run meanwhile; one sleep(0)
    # per request stands for that wait. Without it the app's thread never let go of the GIL but
    # at the interpreter's 5 ms switch interval, the sender thread built one span per switch,
    # and the collector's 10,000-record queue overflowed (half the spans dropped in a run).
    time.sleep(0)
    body = json.loads(request.content)
    streamed = bool(body.get("stream"))
    chat = request.url.path.endswith("/chat/completions")
    if streamed:
        events = CHAT_EVENTS if chat else MESSAGE_EVENTS
        return httpx2.Response(
            200,
            content=_sent_one_by_one(events),
            headers={"content-type": "text/event-stream"},
        )
    return httpx2.Response(200, json=CHAT if chat else MESSAGE)


class Sink:
    """Takes what the collector sends and keeps nothing."""

    def send(self, records: Sequence[dict[str, Any]]) -> SendResult:
        return SendResult(sent=len(records))

    def send_spans(
        self, spans: Sequence[dict[str, Any]], resource: Mapping[str, Any]
    ) -> SendResult:
        return SendResult(sent=len(spans))

    def close(self) -> None:
        pass


def cases() -> dict[str, Callable[[], None]]:
    oai = openai.OpenAI(
        api_key="sk-bench",
        base_url="http://fake/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    ant = anthropic.Anthropic(
        api_key="sk-bench",
        base_url="http://fake",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )

    def openai_chat() -> None:
        oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2)

    def openai_chat_stream() -> None:
        SENT.clear()
        RECEIVED.clear()
        clock, received = time.perf_counter_ns, RECEIVED.append
        stream = oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        for _ in stream:
            received(clock())

    def anthropic_messages() -> None:
        ant.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES[1:])

    def anthropic_stream() -> None:
        SENT.clear()
        RECEIVED.clear()
        clock, received = time.perf_counter_ns, RECEIVED.append
        stream = ant.messages.create(
            model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES[1:], stream=True
        )
        for _ in stream:
            received(clock())

    return {
        "openai chat": openai_chat,
        "openai chat, streamed (8 chunks)": openai_chat_stream,
        "anthropic messages": anthropic_messages,
        "anthropic messages, streamed (10 events)": anthropic_stream,
    }


# Wall-clock ns, CPU ns of the calling thread per call; ns from the provider handing out an
# event to the app getting its chunk, per chunk.
Samples = tuple[list[int], list[int], list[int]]


def timed_pair(
    call: Callable[[], None], on: Callable[[bool], None], bare: Samples, captured: Samples
) -> None:
    """One bare call and one captured call, each under a request context of its own."""
    for capture, (wall, cpu, delays) in ((False, bare), (True, captured)):
        on(capture)
        # As under the middleware: a trace and a current request, made per request.
        trace_token = tracing.enter(tracing.new_trace())
        request_token = current_request.enter(current_request.CurrentRequest())
        started = time.perf_counter_ns()
        started_cpu = time.thread_time_ns()
        call()
        cpu.append(time.thread_time_ns() - started_cpu)
        wall.append(time.perf_counter_ns() - started)
        current_request.leave(request_token)
        tracing.leave(trace_token)
        if RECEIVED:
            # Every event the fake sends is a chunk the app gets (the SDK ends the OpenAI stream
            # at "[DONE]", its last event): paired in order.
            delays.extend(got - sent for sent, got in zip(SENT, RECEIVED, strict=False))
            SENT.clear()
            RECEIVED.clear()


def quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def measure(n: int) -> tuple[dict[str, dict[str, float]], float]:
    """Per case: wall-clock p50/p99 of bare and captured calls and the median CPU time of the
    calling thread for each (robust to a shared box: time spent waiting for the GIL or the
    cores is not counted); and the sender thread's median CPU per span."""
    collector = Collector(transport=Sink(), service_name="bench", flush_interval=0.2)
    collector.instrument_openai()
    collector.instrument_anthropic()

    def on(capture: bool) -> None:
        # The SDKs stay patched; "bare" is the patch passing the call straight through
        # (a None check), so that bare and captured calls can alternate one by one.
        llm_openai.PATCHES.collector = llm_anthropic.PATCHES.collector = (
            collector if capture else None
        )

    results: dict[str, dict[str, float]] = {}
    for name, call in cases().items():
        for _ in range(200):  # warm up both paths (imports, pydantic caches)
            call()
        bare: Samples = ([], [], [])
        captured: Samples = ([], [], [])
        load_before = os.getloadavg()[0]
        for _ in range(n):
            timed_pair(call, on, bare, captured)
        results[name] = {
            "bare_p50": quantile(bare[0], 0.5),
            "bare_p99": quantile(bare[0], 0.99),
            "p50": quantile(captured[0], 0.5),
            "p99": quantile(captured[0], 0.99),
            "bare_cpu": quantile(bare[1], 0.5),
            "cpu": quantile(captured[1], 0.5),
            "bare_cpu_p99": quantile(bare[1], 0.99),
            "cpu_p99": quantile(captured[1], 0.99),
            "load": max(load_before, os.getloadavg()[0]),
        }
        if bare[2]:
            results[name].update(
                bare_delay_p50=quantile(bare[2], 0.5),
                bare_delay_p99=quantile(bare[2], 0.99),
                delay_p50=quantile(captured[2], 0.5),
                delay_p99=quantile(captured[2], 0.99),
            )
    collector.flush(60)
    stats = collector.stats()
    print(
        f"spans sent {stats.sent}, dropped {stats.dropped}, failed {stats.failed}, "
        f"capture errors {stats.capture_errors}"
    )

    # The sender thread's share, per call: building the span (with content) and encoding it
    # as the HTTP transport does, off the app's path.
    on(False)
    spans = Collector(transport=Sink(), flush_interval=1e9, batch_size=10**9, max_queue=10**9)
    spans.instrument_openai()
    spans.instrument_anthropic()
    for call in cases().values():
        for _ in range(500):
            call()
    queued = list(spans._queue)
    costs = []
    for item in queued:
        assert isinstance(item, llm.LlmCall)
        started = time.thread_time_ns()
        span = llm.to_span(item, spans.masked_keys, True)
        json.dumps(span, separators=(",", ":"), default=str).encode()
        costs.append(time.thread_time_ns() - started)
    per_span = quantile(costs, 0.5)
    spans.uninstrument_openai()
    spans.uninstrument_anthropic()
    spans.close()
    collector.close()
    return results, per_span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="captured calls per case")
    parser.add_argument("--append", action="store_true", help=f"add the table to {RESULTS}")
    args = parser.parse_args()
    results, per_span = measure(args.n)
    rows = []
    for name, r in results.items():
        added50, added99 = r["p50"] - r["bare_p50"], r["p99"] - r["bare_p99"]
        added_cpu = r["cpu"] - r["bare_cpu"]
        added_cpu99 = r["cpu_p99"] - r["bare_cpu_p99"]
        delay = ""
        if "delay_p50" in r:
            delay = (
                f"{r['delay_p50'] - r['bare_delay_p50']:.1f} / "
                f"{r['delay_p99'] - r['bare_delay_p99']:.1f} us"
            )
        line = (
            f"RESULT {name}: bare p50 {r['bare_p50']:.1f} us p99 {r['bare_p99']:.1f} us; "
            f"captured p50 {r['p50']:.1f} us p99 {r['p99']:.1f} us; "
            f"added p50 {added50:.1f} us p99 {added99:.1f} us; "
            f"app-thread CPU bare p50 {r['bare_cpu']:.1f} p99 {r['bare_cpu_p99']:.1f}, "
            f"captured p50 {r['cpu']:.1f} p99 {r['cpu_p99']:.1f}, "
            f"added p50 {added_cpu:.1f} p99 {added_cpu99:.1f} us; load {r['load']:.1f}"
        )
        if delay:
            line += (
                f"; chunk delay bare p50 {r['bare_delay_p50']:.1f} p99 {r['bare_delay_p99']:.1f}"
                f", captured p50 {r['delay_p50']:.1f} p99 {r['delay_p99']:.1f}, added {delay}"
            )
        print(line)
        rows.append(
            f"| {name} | {r['bare_p50']:.1f} / {r['bare_p99']:.1f} us | "
            f"{r['p50']:.1f} / {r['p99']:.1f} us | **{added50:.1f} / {added99:.1f} us** | "
            f"{added_cpu:.1f} / {added_cpu99:.1f} us | {delay or '-'} | {r['load']:.1f} |"
        )
    print(
        f"RESULT sender thread: {per_span:.1f} us CPU per span built and encoded "
        "(median, off the app's path)"
    )
    if args.append:
        section = "\n".join(
            [
                f"## Collector LLM capture overhead (issue 15) — {now_text()}, {machine()}",
                "",
                f"`bench/collector_llm_overhead.py --n {args.n}`: the real SDKs against an "
                "in-process mock transport, bare and captured calls alternating one by one "
                "(each under a fresh request context), the sender thread building every span "
                "with content meanwhile. Target: added p50 < 50 us, p99 < 500 us.",
                "",
                "| case | bare p50 / p99 | captured p50 / p99 | added p50 / p99 "
                "| added app-thread CPU p50 / p99 | added chunk delay p50 / p99 | load |",
                "|---|---|---|---|---|---|---|",
                *rows,
                "",
                f"Sender thread: {per_span:.1f} us of CPU per span built and encoded "
                "(content on, median), off the app's path.",
                "",
                "",
            ]
        )
        text = RESULTS.read_text()
        head, _, rest = text.partition("\n## ")
        RESULTS.write_text(f"{head}\n{section}## {rest}")
        print(f"added to {RESULTS}")


if __name__ == "__main__":
    main()
