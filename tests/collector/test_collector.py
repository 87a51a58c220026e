"""The Collector's queue, sender thread, retries and losses, against a real HTTP stand_in."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from collector.harness import Hit, MemoryTransport, StandInServer
from fixtures.network import free_port
from fixtures.waiting import wait_until
from logharbor.collector import Collector, Exchange, HttpTransport, SendResult

KEY = "lhk_test_key"
SOURCE = "0197548f-0e8e-7550-b283-f26fd98a9423"


def record(status: int = 200, path: str = "/v1/users", **extra: Any) -> dict[str, Any]:
    return {
        "domainUrl": "https://api.example.com",
        "pathnameUrl": path,
        "status": status,
        "protocol": "https",
        "method": "GET",
        "trafficUserId": None,
        "elapsedTime": 1.5,
        "requestHeaders": {"accept": "application/json"},
        "requestBody": None,
        "queryParams": {},
        "responseHeaders": {"content-type": "application/json"},
        "responseBody": None,
        **extra,
    }


def make(stand_in: StandInServer, **options: Any) -> Collector:
    options.setdefault("flush_interval", 0.05)
    options.setdefault("backoff_base", 0.01)
    return Collector(stand_in.url, api_key=KEY, traffic_source_id=SOURCE, **options)


def test_records_reach_the_batch_endpoint_with_the_key(stand_in: StandInServer) -> None:
    collector = make(stand_in)
    assert all(collector.record(record(path=f"/r/{n}")) for n in range(5))
    assert collector.flush(30)
    hits = [hit for hit in stand_in.hits if hit.path == "/api/v1/ingest"]
    assert hits, stand_in.hits
    assert hits[0].headers["authorization"] == f"Bearer {KEY}"
    assert hits[0].body["trafficSourceId"] == SOURCE
    assert [r["pathnameUrl"] for r in stand_in.records()] == [f"/r/{n}" for n in range(5)]
    assert all("trafficSourceId" not in r for r in stand_in.records())
    stats = collector.stats()
    assert (stats.accepted, stats.sent, stats.failed, stats.dropped) == (5, 5, 0, 0)
    collector.close()


def test_batches_are_cut_at_batch_size(stand_in: StandInServer) -> None:
    collector = make(stand_in, batch_size=10, flush_interval=30)
    for n in range(25):
        collector.record(record(path=f"/r/{n}"))
    assert collector.flush(30)
    sizes = [len(hit.body["records"]) for hit in stand_in.hits]
    assert sizes == [10, 10, 5]
    collector.close()


def test_without_batch_endpoint_it_posts_each_record_and_remembers(stand_in: StandInServer) -> None:
    stand_in.batch = False
    collector = make(stand_in)
    collector.record(record(path="/a"))
    collector.record(record(path="/b"))
    assert collector.flush(30)
    collector.record(record(path="/c"))
    assert collector.flush(30)
    paths = [hit.path for hit in stand_in.hits]
    assert paths == ["/api/v1/ingest", "/ingest-log", "/ingest-log", "/ingest-log"]
    singles = [hit.body for hit in stand_in.hits if hit.path == "/ingest-log"]
    assert [s["pathnameUrl"] for s in singles] == ["/a", "/b", "/c"]
    assert all(s["trafficSourceId"] == SOURCE for s in singles)
    assert collector.stats().sent == 3
    collector.close()


def test_a_batch_too_large_for_the_server_is_split(stand_in: StandInServer) -> None:
    def answer(hit: Hit) -> Any:
        if hit.path == "/api/v1/ingest" and len(hit.body["records"]) > 2:
            return 413, {"name": "PayloadTooLarge", "message": "too large"}, {}
        return None

    stand_in.reply = answer
    collector = make(stand_in, flush_interval=60)
    for n in range(7):
        collector.record(record(path=f"/{n}"))
    assert collector.flush(30)
    stored = [
        r["pathnameUrl"]
        for hit in stand_in.hits
        if hit.path == "/api/v1/ingest" and len(hit.body["records"]) <= 2
        for r in hit.body["records"]
    ]
    assert stored == [f"/{n}" for n in range(7)]
    assert collector.stats().sent == 7
    collector.close()


def test_a_404_from_both_endpoints_is_an_unknown_source_not_a_missing_endpoint(
    stand_in: StandInServer,
) -> None:
    unknown = (404, {"name": "NotFound", "message": "Traffic source not found"}, {})
    stand_in.reply = lambda hit: unknown
    collector = make(stand_in)
    collector.record(record())
    assert collector.flush(30)
    assert [hit.path for hit in stand_in.hits] == ["/api/v1/ingest", "/ingest-log"]
    assert collector.stats().rejected == 1
    assert collector.transport.batch_supported is None  # type: ignore[attr-defined]
    collector.close()


def test_server_errors_are_retried_with_backoff_until_they_pass(stand_in: StandInServer) -> None:
    failures = iter([(503, {"name": "ServiceUnavailable"}, {"Retry-After": "0"})] * 2)
    stand_in.reply = lambda hit: next(failures, None)
    collector = make(stand_in)
    collector.record(record())
    assert collector.flush(30)
    assert len(stand_in.hits) == 3
    stats = collector.stats()
    assert (stats.sent, stats.retries, stats.failed) == (1, 2, 0)
    collector.close()


def test_retry_after_is_honoured(stand_in: StandInServer) -> None:
    failures = iter([(429, {}, {"Retry-After": "1"})])
    stand_in.reply = lambda hit: next(failures, None)
    times: list[float] = []
    original = stand_in.answer

    def timed(hit: Hit) -> Any:
        import time

        times.append(time.monotonic())
        return original(hit)

    stand_in.answer = timed  # type: ignore[method-assign]
    collector = make(stand_in, backoff_base=0.001)
    collector.record(record())
    assert collector.flush(30)
    assert len(times) == 2
    # Backoff alone would have waited a millisecond; the server asked for a second.
    assert times[1] - times[0] >= 0.9
    collector.close()


def test_a_batch_is_given_up_after_max_attempts_and_counted(stand_in: StandInServer) -> None:
    stand_in.reply = lambda hit: (500, {"name": "Internal"}, {})
    collector = make(stand_in, max_attempts=3)
    for _ in range(4):
        collector.record(record())
    assert collector.flush(30)
    assert len(stand_in.hits) == 3
    stats = collector.stats()
    assert (stats.sent, stats.failed, stats.retries) == (0, 4, 2)
    assert stats.last_error is not None and "500" in stats.last_error
    collector.close()


def test_refused_records_are_counted_and_not_retried(stand_in: StandInServer) -> None:
    stand_in.batch = False
    bad = {"name": "BadRequest", "message": "Invalid", "fieldErrors": {"status": "bad"}}
    stand_in.reply = lambda hit: (400, bad, {}) if hit.body.get("status") == 999 else None
    collector = make(stand_in)
    collector.record(record(status=999))
    collector.record(record(status=200))
    assert collector.flush(30)
    assert [hit.path for hit in stand_in.hits].count("/ingest-log") == 2
    stats = collector.stats()
    assert (stats.sent, stats.rejected, stats.retries) == (1, 1, 0)
    assert "status" in (stats.last_error or "")
    collector.close()


def test_per_item_errors_of_a_batch_are_counted_not_retried(stand_in: StandInServer) -> None:
    def answer(hit: Hit) -> Any:
        count = len(hit.body["records"])
        errors = [{"index": 1, "errors": {"status": "Input should be an integer"}}]
        items = [{"index": n, "id": f"id-{n}"} for n in range(count) if n != 1]
        return (
            201,
            {"received": count, "stored": count - 1, "failed": 1, "items": items, "errors": errors},
            {},
        )

    stand_in.reply = answer
    collector = make(stand_in)
    for n in range(3):
        collector.record(record(path=f"/{n}"))
    assert collector.flush(30)
    assert len(stand_in.hits) == 1
    stats = collector.stats()
    assert (stats.sent, stats.rejected, stats.retries) == (2, 1, 0)
    assert "status" in (stats.last_error or "")
    collector.close()


def test_a_batch_with_nothing_valid_is_refused_whole(stand_in: StandInServer) -> None:
    def answer(hit: Hit) -> Any:
        errors = [{"index": n, "errors": {"method": "bad"}} for n in range(2)]
        return 400, {"name": "BadRequest", "message": "No valid record", "errors": errors}, {}

    stand_in.reply = answer
    collector = make(stand_in)
    collector.record(record(method="BREW"))
    collector.record(record(method="BREW"))
    assert collector.flush(30)
    assert len(stand_in.hits) == 1
    stats = collector.stats()
    assert (stats.sent, stats.rejected) == (0, 2)
    collector.close()


def test_server_down_never_reaches_the_app_and_losses_are_counted() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    collector = Collector(
        dead,
        api_key=KEY,
        traffic_source_id=SOURCE,
        max_queue=10,
        batch_size=5,
        max_attempts=2,
        backoff_base=0.01,
        flush_interval=0.05,
    )
    accepted = [collector.record(record(path=f"/{n}")) for n in range(50)]
    assert all(accepted)
    assert collector.flush(30)
    stats = collector.stats()
    assert stats.sent == 0
    assert stats.dropped + stats.failed == 50
    assert stats.failed > 0
    assert "ConnectError" in (stats.last_error or "")
    collector.close()


def test_a_full_queue_drops_the_oldest(stand_in: StandInServer) -> None:
    stand_in.hold.clear()  # the first batch is stuck in the server: the queue fills behind it
    collector = make(stand_in, max_queue=5, batch_size=1)
    collector.record(record(path="/first"))
    wait_until(lambda: stand_in.waiting == 1, "the first batch to reach the server")
    for n in range(20):
        assert collector.record(record(path=f"/{n}"))
    assert collector.stats().dropped == 15
    stand_in.hold.set()
    assert collector.flush(30)
    assert [r["pathnameUrl"] for r in stand_in.records()] == [
        "/first",
        "/15",
        "/16",
        "/17",
        "/18",
        "/19",
    ]
    collector.close()


def test_sampling_keeps_every_error_and_a_fraction_of_successes() -> None:
    transport = MemoryTransport()
    collector = Collector(transport=transport, success_sample_rate=0.0, flush_interval=0.05)
    kept = [collector.record(record(status=s)) for s in (200, 201, 302, 404, 500, 503)]
    assert kept == [False, False, False, True, True, True]
    assert collector.flush(30)
    assert [r["status"] for r in transport.records] == [404, 500, 503]
    assert collector.stats().sampled_out == 3
    collector.close()

    half = Collector(transport=MemoryTransport(), success_sample_rate=0.5, flush_interval=0.05)
    kept_half = sum(half.record(record()) for _ in range(2000))
    assert 800 < kept_half < 1200
    half.close()


def test_sensitive_values_are_masked_before_they_leave(stand_in: StandInServer) -> None:
    collector = make(stand_in, extra_masked_keys=["x-internal"])
    collector.record(
        record(
            requestHeaders={"Authorization": "Bearer s3cret", "Cookie": "a=b", "X-Internal": "i"},
            queryParams={"token": "t0k", "page": "2"},
            requestBody={"user": "jane", "password": "hunter2", "nested": {"apiKey": "k"}},
            responseHeaders={"set-cookie": "sid=1"},
        )
    )
    collector.record(
        Exchange(
            method="post",
            scheme="https",
            host="api.example.com",
            path="/login",
            query=b"api_key=abc&q=1",
            status=200,
            elapsed_ms=3.25,
            request_headers=[
                (b"authorization", b"Basic xyz"),
                (b"content-type", b"application/json"),
            ],
            response_headers=[(b"set-cookie", b"sid=2")],
        )
    )
    assert collector.flush(30)
    first, second = stand_in.records()
    assert first["requestHeaders"] == {
        "Authorization": "****",
        "Cookie": "****",
        "X-Internal": "****",
    }
    assert first["queryParams"] == {"token": "****", "page": "2"}
    assert first["requestBody"] == {
        "user": "jane",
        "password": "****",
        "nested": {"apiKey": "****"},
    }
    assert first["responseHeaders"] == {"set-cookie": "****"}
    assert second["requestHeaders"]["authorization"] == "****"
    assert second["queryParams"] == {"api_key": "****", "q": "1"}
    assert second["responseHeaders"] == {"set-cookie": "****"}
    assert second["method"] == "POST"
    assert second["domainUrl"] == "https://api.example.com"
    sent_text = str([hit.body for hit in stand_in.hits])
    for secret in ("s3cret", "hunter2", "t0k", "xyz", "abc", "sid="):
        assert secret not in sent_text
    collector.close()


def test_close_flushes_what_is_queued(stand_in: StandInServer) -> None:
    collector = make(stand_in, flush_interval=60)
    for n in range(3):
        collector.record(record(path=f"/{n}"))
    collector.close()
    assert len(stand_in.records()) == 3
    assert collector.record(record()) is False
    collector.close()  # twice is fine


def test_close_gives_up_at_its_deadline_when_the_server_is_stuck(stand_in: StandInServer) -> None:
    stand_in.hold.clear()
    collector = make(stand_in, flush_interval=60, timeout=30)
    for n in range(3):
        collector.record(record(path=f"/{n}"))
    collector.flush(0)
    collector.close(timeout=0.2)
    stats = collector.stats()
    assert stats.queued == 0
    assert stats.sent == 0
    stand_in.hold.set()


def test_a_broken_transport_or_record_never_reaches_the_app() -> None:
    class Exploding:
        def send(self, records: Sequence[dict[str, Any]]) -> SendResult:
            raise RuntimeError("boom")

        def close(self) -> None:
            raise RuntimeError("boom")

    collector = Collector(
        transport=Exploding(), max_attempts=2, backoff_base=0.001, flush_interval=0.05
    )
    assert collector.record(record())
    broken = Exchange(
        "GET", "http", "h", "/", "", 200, 1.0, request_headers=42, response_headers=[]
    )  # type: ignore[arg-type]
    assert collector.record(broken)
    assert collector.record(None) is False  # type: ignore[arg-type]
    assert collector.flush(30)
    stats = collector.stats()
    assert stats.failed == 2
    assert stats.last_error == "RuntimeError: boom"
    collector.close()


def test_a_collector_that_is_disabled_records_nothing() -> None:
    transport = MemoryTransport()
    collector = Collector(transport=transport, enabled=False)
    assert collector.record(record()) is False
    assert collector.flush(1)
    collector.close()
    assert transport.records == []


def test_bad_configuration_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="url and api_key"):
        Collector("http://x")
    with pytest.raises(ValueError, match="traffic_source_id"):
        Collector("http://x", api_key="a-user-token")
    with pytest.raises(ValueError, match="success_sample_rate"):
        Collector(transport=MemoryTransport(), success_sample_rate=1.5)
    with pytest.raises(ValueError, match="max_queue"):
        Collector(transport=MemoryTransport(), max_queue=0)


def test_a_forked_child_starts_its_own_sender_and_does_not_resend(stand_in: StandInServer) -> None:
    collector = make(stand_in, flush_interval=60)
    collector.record(record(path="/before-fork"))
    assert collector.flush(30)  # the parent now holds an open connection to the stand_in
    collector.record(record(path="/parent"))
    parent_client = collector.transport._client  # type: ignore[attr-defined]
    assert parent_client is not None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: it must not send the parent's queued record
        code = 1
        try:
            collector.record(record(path="/child"))
            ok = collector.flush(30)
            stats = collector.stats()
            fresh = collector.transport._client is not parent_client  # type: ignore[attr-defined]
            code = 0 if ok and stats.sent == 1 and stats.accepted == 1 and fresh else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    status = os.read(read, 1)
    os.waitpid(pid, 0)
    assert status == b"\x00"
    collector.close()
    assert sorted(r["pathnameUrl"] for r in stand_in.records()) == [
        "/before-fork",
        "/child",
        "/parent",
    ]


def test_records_from_many_threads_are_all_counted(stand_in: StandInServer) -> None:
    collector = make(stand_in, max_queue=100_000, batch_size=500)

    def worker(n: int) -> None:
        for i in range(500):
            collector.record(record(path=f"/{n}/{i}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert collector.flush(60)
    assert collector.stats().sent == 4000
    assert len({r["pathnameUrl"] for r in stand_in.records()}) == 4000
    collector.close()


def test_http_transport_reuses_a_given_client_and_reports_batch_support(
    stand_in: StandInServer,
) -> None:
    import httpx

    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}) as client:
        transport = HttpTransport(stand_in.url, KEY, SOURCE, client=client)
        assert transport.batch_supported is None
        result = transport.send([record()])
        assert (result.sent, result.retry) == (1, [])
        assert transport.batch_supported is True
        transport.close()
        assert not client.is_closed
