"""``Collector``: a bounded queue and one background thread that ships records to LogHarbor.

The host app's contract is short: ``record()`` never blocks on the network, never raises and
returns whether the record was queued. Everything that can be slow or fail (masking, JSON, HTTP,
retries) happens in the sender thread. When the queue is full the oldest record goes and is
counted; when the server is down batches are retried with backoff and then given up on, counted.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from logharbor.collector.exceptions import mask_exception
from logharbor.collector.llm import LlmCall, to_span
from logharbor.collector.prompts import Key, Prompt, PromptCache, PromptError, PromptFetcher
from logharbor.collector.records import Exchange, new_record_id, to_record
from logharbor.collector.redaction import DEFAULT_MASKED_KEYS, mask, normalize_keys
from logharbor.collector.tracing import current_trace, new_trace
from logharbor.collector.transport import HttpTransport, SendResult, Transport

log = logging.getLogger("logharbor.collector")


@contextlib.contextmanager
def capture_internal_exceptions() -> Iterator[None]:
    """Swallow (and log) any error of the collector's own, so it never reaches the host app."""
    try:
        yield
    except Exception:
        log.debug("LogHarbor collector error (ignored)", exc_info=True)


@dataclass(frozen=True)
class CollectorStats:
    """Counters since the collector was made (in this process)."""

    queued: int  # waiting in the queue right now
    accepted: int  # records taken by record()
    sent: int  # stored by the server
    sampled_out: int  # successes skipped by sampling (by design, not a loss)
    dropped: int  # oldest records pushed out of a full queue
    failed: int  # given up after the last retry, or left unsent at shutdown
    rejected: int  # refused by the server for good (invalid record, bad key)
    retries: int  # batches sent again after a failure
    last_error: str | None
    # Failures of the collector's own while capturing an LLM call (swallowed: the call went on).
    capture_errors: int = 0


class Collector:
    """Ships captured traffic to one LogHarbor traffic source.

    ``Collector("https://logs.example.com", api_key="lhk_...")`` is enough (an ingest key
    names its traffic source; with a user token pass ``traffic_source_id`` too); pass it to the
    middleware of your framework. Not a singleton: make one per app
    (or per test) and ``close()`` it when done (it is also closed at interpreter exit).

    ``instrument_openai()`` / ``instrument_anthropic()`` capture the app's LLM calls as
    OpenTelemetry GenAI spans sent to the same server (``/v1/traces``) through the same queue;
    ``service_name`` names the app on them, and ``capture_llm_content=False`` leaves prompts
    and answers out (models, tokens, timings and errors are still sent). The counters of
    ``stats()`` count those spans with the records.

    ``prompt("Summarize a ticket", label="production")`` serves a library prompt from a cache
    refreshed every ``prompt_refresh_interval`` seconds (``logharbor.collector.prompts``).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        traffic_source_id: str | None = None,
        transport: Transport | None = None,
        max_queue: int = 10_000,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 5.0,
        success_sample_rate: float = 1.0,
        masked_keys: Iterable[str] = DEFAULT_MASKED_KEYS,
        extra_masked_keys: Iterable[str] = (),
        route_as_pathname: bool = False,
        enabled: bool = True,
        service_name: str | None = None,
        capture_llm_content: bool = True,
        prompt_refresh_interval: float = 60.0,
    ) -> None:
        if transport is None:
            if not (url and api_key):
                raise ValueError("Collector needs url and api_key (or a transport)")
            if not (traffic_source_id or api_key.startswith("lhk_")):
                raise ValueError(
                    "Collector needs traffic_source_id unless api_key is an ingest key"
                )
            transport = HttpTransport(url, api_key, traffic_source_id, timeout=timeout)
        if not 0.0 <= success_sample_rate <= 1.0:
            raise ValueError("success_sample_rate must be between 0 and 1")
        if max_queue < 1 or batch_size < 1 or max_attempts < 1:
            raise ValueError("max_queue, batch_size and max_attempts must be at least 1")
        self.transport = transport
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.success_sample_rate = success_sample_rate
        self.masked_keys = normalize_keys([*masked_keys, *extra_masked_keys])
        self.route_as_pathname = route_as_pathname
        self.enabled = enabled
        self.service_name = service_name
        self.capture_llm_content = capture_llm_content
        if prompt_refresh_interval <= 0:
            raise ValueError("prompt_refresh_interval must be positive")
        self.prompt_refresh_interval = prompt_refresh_interval
        self._prompt_server = (url, api_key) if url and api_key else None
        self._prompt_timeout = timeout
        self._prompt_cache: PromptCache | None = None
        self._prompt_fetcher: PromptFetcher | None = None

        self._queue: deque[Exchange | Mapping[str, Any] | LlmCall] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._settled_cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._deadline: float | None = None

        self._accepted = 0
        self._settled = 0  # sent + dropped + failed + rejected: what flush() waits for
        self._sent = 0
        self._sampled_out = 0
        self._dropped = 0
        self._failed = 0
        self._rejected = 0
        self._retries = 0
        self._capture_errors = 0
        self._last_error: str | None = None
        self._warned_at = 0.0

        ref = weakref.ref(self)
        atexit.register(_close_at_exit, ref)
        # After fork the child has a copy of the queue (the parent will send it) and no sender
        # thread; start afresh there. This is the fork check without a getpid() per record.
        os.register_at_fork(after_in_child=lambda: _reset_after_fork(ref))

    # --- the request path ---------------------------------------------------------------------

    def record(self, item: Exchange | Mapping[str, Any] | LlmCall) -> bool:
        """Queue one record (an ``Exchange`` or a compose-shaped dict); True if it was queued.

        Never blocks and never raises. Successes may be sampled out; errors (status >= 400)
        are always kept. A full queue drops its oldest record, counted in ``stats().dropped``.
        A dict without ``traceId``/``spanId`` is sent as a new span of the current trace (see
        ``logharbor.collector.tracing``), or of a trace of its own outside any request.
        """
        try:
            if not self.enabled or self._closed:
                return False
            kind = type(item)
            if kind is not Exchange and kind is not LlmCall:
                if not isinstance(item, Mapping):
                    return False
                if "traceId" not in item or "spanId" not in item:
                    item = _with_trace(item)
            rate = self.success_sample_rate
            # LLM calls are never sampled out: few, costly, and each one is worth seeing.
            if rate < 1.0 and kind is not LlmCall:
                assert not isinstance(item, LlmCall)
                status = item.status if isinstance(item, Exchange) else item.get("status", 0)
                if isinstance(status, int) and status < 400 and random.random() >= rate:
                    with self._lock:
                        self._sampled_out += 1
                    return False
            with self._lock:
                if len(self._queue) >= self.max_queue:
                    self._queue.popleft()
                    self._dropped += 1
                    self._settled += 1
                self._queue.append(item)
                self._accepted += 1
                size = len(self._queue)
            if self._thread is None:
                self._start()
            if size >= self.batch_size and not self._wake.is_set():
                self._wake.set()
            return True
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)
            return False

    # --- lifecycle -----------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(target=self._run, name="logharbor-collector", daemon=True)
            self._thread = thread
        thread.start()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Send what is queued now; True once all of it is settled (sent, refused or given up).

        Waits at most ``timeout`` seconds; never raises.
        """
        try:
            with self._lock:
                target = self._accepted
                started = self._thread is not None
            if not started:
                return True
            self._wake.set()
            with self._settled_cond:
                return self._settled_cond.wait_for(lambda: self._settled >= target, timeout)
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)
            return False

    def close(self, timeout: float = 5.0) -> None:
        """Flush for at most ``timeout`` seconds, then stop the sender; later records are ignored.

        What is still unsent after the timeout (the server being down, say) counts as failed.
        """
        try:
            if self._closed:
                return
            self._closed = True
            self._deadline = time.monotonic() + max(timeout, 0.0)
            self._stop.set()
            self._wake.set()
            thread = self._thread
            if thread is not None:
                thread.join(max(timeout, 0.0) + 1.0)
            with self._lock:
                left = len(self._queue)
                self._queue.clear()
                self._failed += left
                self._settled += left
            with capture_internal_exceptions():
                self.transport.close()
            with capture_internal_exceptions():
                if self._prompt_cache is not None:
                    self._prompt_cache.close()
                if self._prompt_fetcher is not None:
                    self._prompt_fetcher.close()
        except Exception:
            log.debug("LogHarbor collector error (ignored)", exc_info=True)

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def capture_failed(self) -> None:
        """Count a failure of the collector's own on the app's path (it was swallowed)."""
        log.debug("LogHarbor collector error (ignored)", exc_info=True)
        with self._lock:
            self._capture_errors += 1

    # --- LLM calls -----------------------------------------------------------------------------

    def instrument_openai(self) -> None:
        """Capture every ``openai`` client's chat completions and responses calls (sync and
        async, streamed or not) into this collector, until ``uninstrument_openai()``.

        Patches the SDK's resource classes, so clients made before and after are covered;
        calling it again (on this or another collector) only changes where calls are sent.
        """
        from logharbor.collector import llm_openai

        llm_openai.install()
        llm_openai.PATCHES.collector = self

    def uninstrument_openai(self) -> None:
        """Put the ``openai`` SDK back as it was."""
        from logharbor.collector import llm_openai

        llm_openai.PATCHES.restore()

    def instrument_anthropic(self) -> None:
        """Capture every ``anthropic`` client's messages calls (sync and async, ``stream=True``
        and ``messages.stream(...)``) into this collector, until ``uninstrument_anthropic()``.
        """
        from logharbor.collector import llm_anthropic

        llm_anthropic.install()
        llm_anthropic.PATCHES.collector = self

    def uninstrument_anthropic(self) -> None:
        """Put the ``anthropic`` SDK back as it was."""
        from logharbor.collector import llm_anthropic

        llm_anthropic.PATCHES.restore()

    # --- library prompts -----------------------------------------------------------------------

    def prompt(
        self, title: str | None = None, *, id: str | None = None, label: str | None = None
    ) -> Prompt:
        """A library prompt of the collector's owner, by exact ``title`` or by ``id``, at the
        version ``label`` points at (the current version without one); ``.compile(**vars)``
        it and LLM calls made with the result are attributed to that version.

        From memory after the first call; the first call for a prompt fetches it and raises
        ``PromptUnavailable`` if LogHarbor cannot be reached or has no such prompt or label.
        """
        return self.prompts.get(_prompt_key(title, id, label))

    async def aprompt(
        self, title: str | None = None, *, id: str | None = None, label: str | None = None
    ) -> Prompt:
        """``prompt()`` for async code (``await collector.aprompt("Summarize a ticket")``):
        from memory when held, else the first fetch runs in a worker thread, so that the event
        loop never waits for the network."""
        import asyncio

        key = _prompt_key(title, id, label)
        cache = self.prompts
        held = cache.held(key)
        if held is not None:
            return held
        return await asyncio.to_thread(cache.get, key)

    @property
    def prompts(self) -> PromptCache:
        """The prompt cache (its ``refreshes`` count and ``wait_for_refresh`` are for tests)."""
        with self._lock:
            if self._prompt_cache is None:
                if self._prompt_server is None:
                    raise PromptError("prompts need the Collector's url and api_key")
                url, api_key = self._prompt_server
                self._prompt_fetcher = PromptFetcher(url, api_key, timeout=self._prompt_timeout)
                self._prompt_cache = PromptCache(
                    self._prompt_fetcher, refresh_interval=self.prompt_refresh_interval
                )
            return self._prompt_cache

    def stats(self) -> CollectorStats:
        with self._lock:
            return CollectorStats(
                queued=len(self._queue),
                accepted=self._accepted,
                sent=self._sent,
                sampled_out=self._sampled_out,
                dropped=self._dropped,
                failed=self._failed,
                rejected=self._rejected,
                retries=self._retries,
                last_error=self._last_error,
                capture_errors=self._capture_errors,
            )

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._settled_cond = threading.Condition()
        self._queue.clear()
        self._thread = None
        # The counters describe this process: the parent's losses and sends are its own.
        self._accepted = self._settled = self._sent = self._sampled_out = 0
        self._dropped = self._failed = self._rejected = self._retries = 0
        self._capture_errors = 0
        self._last_error = None
        if self._closed is False and hasattr(self.transport, "reset_after_fork"):
            self.transport.reset_after_fork()
        if self._prompt_fetcher is not None:
            self._prompt_fetcher.reset_after_fork()
        if self._prompt_cache is not None:
            self._prompt_cache.after_fork()

    # --- the sender thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            with capture_internal_exceptions():
                self._drain()
            if self._stop.is_set():
                with capture_internal_exceptions():
                    self._drain()
                return

    def _take(self) -> list[Exchange | Mapping[str, Any] | LlmCall]:
        with self._lock:
            count = min(self.batch_size, len(self._queue))
            return [self._queue.popleft() for _ in range(count)]

    def _drain(self) -> None:
        while True:
            if self._past_deadline():
                return
            items = self._take()
            if not items:
                return
            records: list[dict[str, Any]] = []
            spans: list[dict[str, Any]] = []
            broken = 0
            for item in items:
                try:
                    if type(item) is LlmCall:
                        spans.append(to_span(item, self.masked_keys, self.capture_llm_content))
                    else:
                        assert not isinstance(item, LlmCall)
                        records.append(self._wire(item))
                except Exception:
                    broken += 1
                    log.debug("LogHarbor collector could not encode a record", exc_info=True)
                # Offer the GIL to the app's threads between records. Otherwise a request
                # arriving while this thread encodes a batch waits out a whole switch interval
                # (5 ms) instead of one record's encoding (tens of microseconds).
                time.sleep(0)
            if broken:
                self._count(failed=broken)
            if records:
                self._ship(records, self.transport.send)
            if spans:
                self._ship(spans, self._span_sender())

    def _span_sender(self) -> Callable[[list[dict[str, Any]]], SendResult]:
        send_spans = getattr(self.transport, "send_spans", None)
        resource = {"service.name": self.service_name}
        if send_spans is None:

            def refuse(spans: list[dict[str, Any]]) -> SendResult:
                return SendResult(rejected=len(spans), error="the transport cannot send spans")

            return refuse
        return lambda spans: send_spans(spans, resource)

    def _wire(self, item: Exchange | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(item, Exchange):
            return dict(to_record(item, self.masked_keys, self.route_as_pathname))
        record = dict(item)
        for key in (
            "requestHeaders",
            "responseHeaders",
            "queryParams",
            "requestBody",
            "responseBody",
        ):
            if key in record:
                record[key] = mask(record[key], self.masked_keys)
        if "exception" in record:
            record["exception"] = mask_exception(record["exception"], self.masked_keys)
        # Fixed before the first attempt, so that every retry carries the same id.
        record.setdefault("id", new_record_id())
        return record

    def _ship(
        self,
        records: list[dict[str, Any]],
        send: Callable[[list[dict[str, Any]]], SendResult],
    ) -> None:
        """Send one batch, retrying what failed for a transient reason with backoff + jitter."""
        attempt = 0
        pending = records
        while pending:
            attempt += 1
            try:
                result = send(pending)
            except Exception as error:
                log.debug("LogHarbor transport error", exc_info=True)
                result = SendResult(retry=pending, error=f"{type(error).__name__}: {error}")
            self._count(sent=result.sent, rejected=result.rejected, error=result.error)
            if result.rejected:
                self._warn(f"LogHarbor refused {result.rejected} record(s): {result.error}")
            pending = result.retry
            if not pending:
                return
            if attempt >= self.max_attempts:
                self._count(failed=len(pending))
                self._warn(
                    f"LogHarbor unreachable after {attempt} attempts; "
                    f"{len(pending)} record(s) lost: {result.error}"
                )
                return
            if not self._sleep(self._backoff(attempt, result.retry_after)):
                self._count(failed=len(pending))
                return
            self._count(retries=1)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        # Jitter so that many processes that lost the server together do not return together.
        delay *= 0.5 + random.random() / 2
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def _sleep(self, delay: float) -> bool:
        """Wait out a backoff; False if the shutdown deadline comes first.

        ``close()`` interrupts the wait so that the rest of it is bounded by its deadline.
        """
        end = time.monotonic() + delay
        while True:
            now = time.monotonic()
            if self._deadline is not None and now >= self._deadline:
                return False
            remaining = end - now
            if self._deadline is not None:
                remaining = min(remaining, self._deadline - now)
            if remaining <= 0:
                return True
            if self._stop.is_set():
                time.sleep(remaining)
            else:
                self._stop.wait(remaining)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _count(
        self,
        *,
        sent: int = 0,
        rejected: int = 0,
        failed: int = 0,
        retries: int = 0,
        error: str | None = None,
    ) -> None:
        with self._lock:
            self._sent += sent
            self._rejected += rejected
            self._failed += failed
            self._retries += retries
            if error:
                self._last_error = error
            self._settled += sent + rejected + failed
        if sent or rejected or failed:
            with self._settled_cond:
                self._settled_cond.notify_all()

    def _warn(self, message: str) -> None:
        # One line a minute at most: a down server must not flood the app's logs.
        now = time.monotonic()
        if now - self._warned_at >= 60.0 or self._warned_at == 0.0:
            self._warned_at = now
            log.warning(message)


def _prompt_key(title: str | None, id: str | None, label: str | None) -> Key:
    if (title is None) == (id is None):
        raise PromptError("name the prompt by title or by id=, not both")
    return ("id", id, label) if id is not None else ("title", title or "", label)


def _with_trace(item: Mapping[str, Any]) -> dict[str, Any]:
    # Taken on the request path, where the trace is current; the caller's dict stays as it was.
    parent = current_trace()
    trace = new_trace() if parent is None else parent.child()
    out = dict(item)
    out.setdefault("traceId", trace.trace_id)
    out.setdefault("spanId", trace.span_id)
    return out


def _close_at_exit(ref: weakref.ref[Collector]) -> None:
    collector = ref()
    if collector is not None:
        collector.close(timeout=2.0)


def _reset_after_fork(ref: weakref.ref[Collector]) -> None:
    collector = ref()
    if collector is not None:
        with capture_internal_exceptions():
            collector._after_fork()
