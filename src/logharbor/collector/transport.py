"""How batches of records reach LogHarbor.

``Transport`` is the seam: the collector hands it a list of wire records and learns which were
stored, which the server refused for good, and which are worth another try. ``HttpTransport``
talks to a LogHarbor server: the batch endpoint when the server has it, otherwise one
``POST /ingest-log`` per record.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from logharbor import __version__
from logharbor.collector.otlp import export_request

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("logharbor.collector")

BATCH_PATH = "/api/v1/ingest"
SINGLE_PATH = "/ingest-log"
# OTLP/HTTP, JSON encoding: the spans of the app's LLM calls.
TRACES_PATH = "/v1/traces"
SOURCE_HEADER = "X-Traffic-Source-Id"
# A server overloaded or restarting answers these; anything else in 4xx is a verdict on the record.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Longest Retry-After honoured, by the collector and by webhook delivery alike (both parse it
# with ``parse_retry_after``). A collector holds its records in memory, so waiting longer would
# only trade a late send for dropped records; a webhook receiver that still refuses after it is
# asked again meets the dispatcher's own backoff, which grows to an hour.
MAX_RETRY_AFTER = 300.0
# The server takes at most this many records per batch call (and 5 MiB; a 413 splits a batch).
MAX_BATCH_RECORDS = 1000


@dataclass
class SendResult:
    sent: int = 0
    # Refused for good (invalid record, bad key, unknown source): counted, never retried.
    rejected: int = 0
    retry: list[dict[str, Any]] = field(default_factory=list)
    retry_after: float | None = None
    # Why the last failure happened, for the log line and ``Collector.stats``.
    error: str | None = None


class Transport(Protocol):
    """Sends wire records. A transport that also sends OTLP spans (the app's LLM calls) has
    ``send_spans(spans, resource) -> SendResult`` too; without it those are counted refused."""

    def send(self, records: Sequence[dict[str, Any]]) -> SendResult: ...

    def close(self) -> None: ...


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def open_client(api_key: str, timeout: float) -> httpx.Client:
    """The collector's own HTTP client to LogHarbor (records, spans and prompts alike)."""
    # Imported here so that importing the collector stays cheap; the first request pays.
    import httpx

    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
        headers={"Authorization": f"Bearer {api_key}", "User-Agent": "logharbor-collector"},
        # The app's proxy settings are for the app's traffic, not for ours.
        trust_env=False,
    )


class HttpTransport:
    """Sends records to a LogHarbor server over HTTP with an ingest key (or a user token).

    With an ingest key (``lhk_...``) the source id may be left out: the key names its source.

    Whether the server has the batch endpoint is learnt from its answers (404/405 there while
    ``/ingest-log`` takes records means no) and remembered for the life of the transport.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        traffic_source_id: str | None = None,
        *,
        timeout: float = 5.0,
        use_batch: bool | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = url.rstrip("/")
        self.traffic_source_id = traffic_source_id
        # None: not known yet; the first batch finds out.
        self.batch_supported: bool | None = use_batch
        self._api_key = api_key
        self._timeout = timeout
        self._client = client
        self._owns_client = client is None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = open_client(self._api_key, self._timeout)
        return self._client

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's connections (their sockets are shared)."""
        if self._owns_client:
            self._client = None

    def close(self) -> None:
        if self._client is not None and self._owns_client:
            self._client.close()
        self._client = None

    def send(self, records: Sequence[dict[str, Any]]) -> SendResult:
        if not records:
            return SendResult()
        if len(records) > MAX_BATCH_RECORDS:
            results = [
                self.send(records[start : start + MAX_BATCH_RECORDS])
                for start in range(0, len(records), MAX_BATCH_RECORDS)
            ]
            merged = SendResult()
            for part in results:
                merged = _merge(merged, part)
            return merged
        if self.batch_supported is not False:
            result = self._send_batch(records)
            if result is not None:
                return result
            result = self._send_each(records)
            # A 404 may also mean an unknown traffic source: conclude that the batch endpoint is
            # missing only once the one-by-one endpoint has taken a record.
            if result.sent:
                self.batch_supported = False
                log.info("LogHarbor at %s has no batch endpoint; sending one by one", self.base_url)
            return result
        return self._send_each(records)

    def send_spans(
        self, spans: Sequence[dict[str, Any]], resource: Mapping[str, Any]
    ) -> SendResult:
        """POST spans (OTLP JSON mapping) to ``/v1/traces``, all under one resource."""
        import httpx

        if not spans:
            return SendResult()
        body = export_request(spans, resource, __version__)
        headers = {"Content-Type": "application/json"}
        if self.traffic_source_id is not None:
            # A user token names no traffic source; an ingest key does (and then this agrees).
            headers[SOURCE_HEADER] = self.traffic_source_id
        try:
            response = self._http().post(
                self.base_url + TRACES_PATH,
                content=json.dumps(body, separators=(",", ":"), default=str).encode(),
                headers=headers,
            )
        except httpx.HTTPError as error:
            return SendResult(retry=list(spans), error=f"{type(error).__name__}: {error}")
        if response.status_code < 300:
            return _partial_success(len(spans), response)
        if response.status_code == 413 and len(spans) > 1:
            half = len(spans) // 2
            return _merge(
                self.send_spans(spans[:half], resource), self.send_spans(spans[half:], resource)
            )
        return _failure(spans, response)

    def _with_source(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.traffic_source_id is not None:
            return {"trafficSourceId": self.traffic_source_id, **body}
        return body

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        content = json.dumps(body, separators=(",", ":"), default=str).encode()
        return self._http().post(
            self.base_url + path, content=content, headers={"Content-Type": "application/json"}
        )

    def _send_batch(self, records: Sequence[dict[str, Any]]) -> SendResult | None:
        """The batch endpoint's verdict, or None when the server has no batch endpoint."""
        import httpx

        try:
            response = self._post(BATCH_PATH, self._with_source({"records": list(records)}))
        except httpx.HTTPError as error:
            return SendResult(retry=list(records), error=f"{type(error).__name__}: {error}")
        if response.status_code in (404, 405) and self.batch_supported is None:
            return None
        if response.status_code < 300 or response.status_code == 400:
            self.batch_supported = True
            return _batch_verdict(records, response)
        if response.status_code == 413 and len(records) > 1:
            half = len(records) // 2
            first, second = self._send_batch(records[:half]), self._send_batch(records[half:])
            return _merge(
                first or self._send_each(records[:half]), second or self._send_each(records[half:])
            )
        return _failure(records, response)

    def _send_each(self, records: Sequence[dict[str, Any]]) -> SendResult:
        import httpx

        result = SendResult()
        for index, record in enumerate(records):
            try:
                response = self._post(SINGLE_PATH, self._with_source(record))
            except httpx.HTTPError as error:
                # The server is unreachable or slow: stop here rather than wait out every record.
                result.retry.extend(records[index:])
                result.error = f"{type(error).__name__}: {error}"
                return result
            if response.status_code < 300:
                result.sent += 1
                continue
            failed = _failure([record], response)
            result.error = failed.error
            if failed.retry:
                result.retry.extend(records[index:])
                result.retry_after = failed.retry_after
                return result
            result.rejected += 1
        return result


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or body.get("detail")
        fields = body.get("fieldErrors")
        if fields:
            return f"HTTP {response.status_code}: {message} {fields}"
        if message:
            return f"HTTP {response.status_code}: {message}"
    return f"HTTP {response.status_code}"


def _failure(records: Sequence[dict[str, Any]], response: httpx.Response) -> SendResult:
    error = _describe(response)
    if response.status_code in RETRYABLE_STATUSES:
        return SendResult(
            retry=list(records),
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            error=error,
        )
    return SendResult(rejected=len(records), error=error)


def _partial_success(count: int, response: httpx.Response) -> SendResult:
    """OTLP's answer: a 2xx may say that some spans (not which) were refused, and why."""
    try:
        body = response.json()
    except ValueError:
        body = None
    partial = body.get("partialSuccess") if isinstance(body, dict) else None
    if not isinstance(partial, dict):
        return SendResult(sent=count)
    try:
        refused = min(max(int(partial.get("rejectedSpans") or 0), 0), count)
    except (TypeError, ValueError):
        refused = 0
    error = partial.get("errorMessage") or None
    return SendResult(sent=count - refused, rejected=refused, error=error if refused else None)


def _merge(first: SendResult, second: SendResult) -> SendResult:
    return SendResult(
        sent=first.sent + second.sent,
        rejected=first.rejected + second.rejected,
        retry=first.retry + second.retry,
        retry_after=max(first.retry_after or 0, second.retry_after or 0) or None,
        error=second.error or first.error,
    )


def _batch_verdict(records: Sequence[dict[str, Any]], response: httpx.Response) -> SendResult:
    """Which items the batch endpoint stored and which it refused (and why).

    LogHarbor answers ``{"received", "stored", "failed", "items": [{"index", "id"}],
    "errors": [{"index", "errors": {field: why}}]}``: 201 when something was stored, 400 when
    nothing was. A refused item is invalid, so it is never retried.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        if response.status_code < 300:
            return SendResult(sent=len(records))
        return SendResult(rejected=len(records), error=_describe(response))
    refused = {
        item["index"]
        for item in errors
        if isinstance(item, dict)
        and isinstance(item.get("index"), int)
        and 0 <= item["index"] < len(records)
    }
    if response.status_code >= 300:
        refused = set(range(len(records)))
    result = SendResult(sent=len(records) - len(refused), rejected=len(refused))
    if errors:
        first = errors[0] if isinstance(errors[0], dict) else {}
        result.error = f"record {first.get('index')} refused: {first.get('errors')}"
    return result
