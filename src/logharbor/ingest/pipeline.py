"""The one storage step: submissions in, stored records, answers and events out.

A *submission* is one request's records for one traffic source. The group-commit writer
(``db.writer``) hands ``Pipeline`` every submission waiting, in one transaction:

1. access for all of them in one query (``traffic.access.grant_ingest``);
2. ids and times for every record, then one insert per table for all the records of a source
   (``RecordStore``), and one event per stored record for the subscribers.

``store`` does both in bulk, or item by item: the same code, with ``per_item`` deciding whether
the submissions are written together, without a savepoint, or each in its own. Bulk is the
rule, and writes only: no read before the insert. A bulk that fails (a stale cached name, a
client id already stored by an earlier try) raises; the writer rolls the whole transaction back
and runs the group again carefully, which here means item by item, looking up the stored client
ids, so that a retry is answered with the stored record and one bad submission is refused alone
(see ``db.writer.BulkRunner``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Dialect

from logharbor.auth.deps import Principal
from logharbor.common.errors import LogHarborError, ServiceUnavailable
from logharbor.common.ids import new_ids
from logharbor.common.timestamps import utcnow
from logharbor.db.writer import WriteTx, is_transient
from logharbor.ingest import genai
from logharbor.ingest.events import GenerationEvent, TrafficEvent
from logharbor.ingest.normalize import exception_json
from logharbor.ingest.records import Generation, LogLine, NormalizedExchange, Span
from logharbor.ingest.store import (
    PendingExchange,
    PendingGeneration,
    PendingLog,
    PendingSpan,
    RecordStore,
    StoredExchange,
    StoredGeneration,
    StoredLog,
)
from logharbor.traffic import queries
from logharbor.traffic.access import grant_ingest

log = logging.getLogger("logharbor.ingest")


@dataclass(frozen=True, slots=True)
class Submission:
    """One request's records for the writer: who sends them, to which source, in what answer."""

    principal: Principal
    source_id: str
    exchanges: Sequence[NormalizedExchange] = ()
    logs: Sequence[LogLine] = ()
    generations: Sequence[Generation] = ()
    spans: Sequence[Span] = ()
    # Answer each exchange with the full stored record (compose), or its id alone (batch).
    detail: bool = True
    # What GenAI details events said about LLM calls (``genai.details_of``), for those calls.
    details: Sequence[Generation] = ()

    @property
    def has_records(self) -> bool:
        return bool(self.exchanges or self.logs or self.generations or self.spans or self.details)


# Per submission: the LogHarborError that refused it whole, or per exchange its answer (a dict)
# or the error that refused that exchange alone (an id already used by another source).
Outcome = LogHarborError | list[dict[str, Any] | LogHarborError]


class Pipeline:
    """The writer's bulk runner for submissions (see ``db.writer.GroupCommitWriter.run_bulk``)."""

    def __init__(self, store: RecordStore) -> None:
        self.store_backend = store

    def prepare(self, dialect: Dialect, submissions: list[Submission]) -> Plans:
        """The bulk path's work that needs no database (ids, rows, driver parameters), done by
        the writer before it takes the write lock: on SQLite every process queues for that
        lock, so whatever is done outside it is done while another process holds it. Measured
        in-process on SQLite, 512 JSON-batch records a group: the lock held 98-111 ms a group
        with this, 115-121 ms without (2026-12-04, the AMD EPYC VM of bench/RESULTS.md)."""
        now = utcnow()
        plans: Plans = {}
        for source_id, indexes in _by_source(submissions).items():
            plan = _plan([submissions[i] for i in indexes], now, {})
            plan.staged = self.store_backend.stage(dialect, source_id, plan.pending)
            plans[source_id] = (tuple(id(submissions[i]) for i in indexes), plan)
        return plans

    def __call__(
        self,
        tx: WriteTx,
        submissions: list[Submission],
        prepared: Plans | None = None,
        careful: bool = False,
    ) -> list[Outcome]:
        return self.store(tx, submissions, per_item=careful, prepared=prepared)

    def store(
        self,
        tx: WriteTx,
        submissions: list[Submission],
        *,
        per_item: bool,
        prepared: Plans | None = None,
    ) -> list[Outcome]:
        conn = tx.conn
        verdicts = grant_ingest(conn, [(s.principal, s.source_id) for s in submissions])
        outcomes: list[Outcome] = [v if v is not None else [] for v in verdicts]
        allowed = [index for index, verdict in enumerate(verdicts) if verdict is None]
        if not per_item:
            try:
                answers = self._store_group(
                    tx, [submissions[i] for i in allowed], look_up_retries=False, prepared=prepared
                )
            except Exception:
                # The writer rolls the transaction back (see the module's docstring). Names
                # cached by this attempt may be of rows it created: gone with it.
                for index in allowed:
                    self.store_backend.forget(submissions[index].source_id)
                raise
            for index, answer in zip(allowed, answers, strict=True):
                outcomes[index] = answer
            return outcomes
        for index in allowed:
            try:
                with conn.begin_nested():
                    part = tx.part()
                    (answer,) = self._store_group(
                        part, [submissions[index]], look_up_retries=True, prepared=None
                    )
            except Exception as exc:
                if is_transient(exc):
                    raise  # the transaction is gone: the writer runs the whole group again
                self.store_backend.forget(submissions[index].source_id)
                if not isinstance(exc, LogHarborError):
                    log.exception("storing a submission failed")
                    exc = ServiceUnavailable("Storage refused the records; retry shortly")
                outcomes[index] = exc
                continue
            tx.adopt(part)
            outcomes[index] = answer
        return outcomes

    def _store_group(
        self,
        tx: WriteTx,
        submissions: list[Submission],
        *,
        look_up_retries: bool,
        prepared: Plans | None,
    ) -> list[list[dict[str, Any] | LogHarborError]]:
        """Store the submissions together, per source one insert per table."""
        answers: list[list[dict[str, Any] | LogHarborError]] = [
            [{} for _ in submission.exchanges] for submission in submissions
        ]
        now = utcnow()
        # Sorted, so that two processes' groups take the sources' name locks in the same order.
        for source_id, indexes in sorted(_by_source(submissions).items()):
            group = [submissions[i] for i in indexes]
            ready = (prepared or {}).get(source_id)
            if ready is not None and ready[0] == tuple(id(s) for s in group):
                plan = ready[1]
            else:  # made for other submissions (one was refused access), or not made at all
                known: dict[str, dict[str, Any] | LogHarborError] = {}
                if look_up_retries:
                    # Item by item, the client ids are looked up: a retry is answered with
                    # the stored record. In bulk nothing is read before the insert: a stored
                    # id fails it on the primary key, and the item-by-item run takes over.
                    client_ids = [
                        record.client_id
                        for submission in group
                        for record in submission.exchanges
                        if record.client_id is not None
                    ]
                    known = self.store_backend.find_stored(tx, source_id, client_ids)
                plan = _plan(group, now, known)
            self._store_exchanges(tx, source_id, group, plan, answers, indexes)
            self._store_logs(tx, source_id, group)
            self._store_calls_and_spans(tx, source_id, group, now, look_up_retries)
        return answers

    def _store_exchanges(
        self,
        tx: WriteTx,
        source_id: str,
        submissions: list[Submission],
        plan: _Plan,
        answers: list[list[dict[str, Any] | LogHarborError]],
        indexes: list[int],
    ) -> None:
        for s, n, answer in plan.known:
            answers[indexes[s]][n] = answer
        if not plan.pending:
            return
        stored = self.store_backend.insert_exchanges(tx, source_id, plan.pending, plan.staged)
        tx.publish([exchange_event(source_id, item) for item in stored])
        for (s, n), item in zip(plan.places, stored, strict=True):
            detail = submissions[s].detail
            answer = record_answer(source_id, item) if detail else {"id": item.pending.id}
            answers[indexes[s]][n] = answer
        for s, n, (first_s, first_n) in plan.repeats:
            answers[indexes[s]][n] = answers[indexes[first_s]][first_n]

    def _store_logs(self, tx: WriteTx, source_id: str, submissions: list[Submission]) -> None:
        lines = [line for submission in submissions for line in submission.logs]
        if not lines:
            return
        now = utcnow()
        pending = [
            PendingLog(log_id, now if line.time > now else line.time, line)
            for log_id, line in zip(new_ids(len(lines)), lines, strict=True)
        ]
        stored = self.store_backend.insert_logs(tx, source_id, pending)
        tx.publish([log_event(source_id, item) for item in stored])

    def _store_calls_and_spans(
        self,
        tx: WriteTx,
        source_id: str,
        submissions: list[Submission],
        now: datetime,
        look_up_retries: bool,
    ) -> None:
        calls = [call for submission in submissions for call in submission.generations]
        spans = [span for submission in submissions for span in submission.spans]
        details = [item for submission in submissions for item in submission.details]
        if not calls and not spans and not details:
            return
        store = self.store_backend
        # Ids: the sender's (an OTLP span's own, so that an exporter's retry is stored once),
        # or new ones; those stored already are skipped (``RecordStore.stored_ids``).
        call_ids = _record_ids([call.client_id for call in calls])
        span_ids = _record_ids([span.client_id for span in spans])
        known_calls = store.stored_ids(
            tx, source_id, "generations", call_ids, careful=look_up_retries
        )
        known_spans = store.stored_ids(tx, source_id, "spans", span_ids, careful=look_up_retries)
        pending_calls = [
            PendingGeneration(call_id, _not_after(call.started_at, now), call)
            for call_id, call in _fresh(call_ids, calls, known_calls)
        ]
        # A call whose details event came first takes them now, before it is costed and
        # counted; details for calls stored already (or just now) are added to them after.
        waiting = store.take_details(
            tx,
            source_id,
            [_span_key(p.call) for p in pending_calls if _has_span(p.call)],
            [_span_key(d) for d in details if _has_span(d)],
        )
        for item in pending_calls:
            values = waiting.get(_span_key(item.call))
            if values is not None:
                genai.merge_details(item.call, values)
        stored = store.insert_generations(tx, source_id, pending_calls)
        tx.publish([generation_event(source_id, item) for item in stored])
        store.attach_details(tx, source_id, [d for d in details if _has_span(d)], now)
        store.insert_spans(
            tx,
            source_id,
            [
                PendingSpan(span_id, _not_after(span.started_at, now), span)
                for span_id, span in _fresh(span_ids, spans, known_spans)
            ],
        )


T = TypeVar("T")


def _has_span(call: Generation) -> bool:
    return call.trace_id is not None and call.span_id is not None


def _span_key(call: Generation) -> tuple[str, str]:
    return (call.trace_id or "", call.span_id or "")


def _record_ids(client_ids: list[str | None]) -> list[str]:
    fresh = iter(new_ids(sum(1 for client_id in client_ids if client_id is None)))
    return [client_id or next(fresh) for client_id in client_ids]


def _fresh(ids: list[str], items: list[T], known: set[str]) -> list[tuple[str, T]]:
    """Each id once (an export may hold a span twice), leaving out those already stored."""
    seen = set(known)
    chosen = []
    for record_id, item in zip(ids, items, strict=True):
        if record_id not in seen:
            seen.add(record_id)
            chosen.append((record_id, item))
    return chosen


def _not_after(started_at: datetime, now: datetime) -> datetime:
    # A client's clock ahead of ours must not file records in the future.
    return now if started_at > now else started_at


@dataclass(slots=True)
class _Plan:
    """How one source's exchanges in a group will be stored."""

    pending: list[PendingExchange]
    # (submission, exchange) of each pending record, in order.
    places: list[tuple[int, int]]
    # Repeats of a client id within the group: answered as its first occurrence is.
    repeats: list[tuple[int, int, tuple[int, int]]]
    # Client ids already stored (a retry): their answers.
    known: list[tuple[int, int, dict[str, Any] | LogHarborError]]
    staged: Any = None


# Per source: the submissions a plan was made for (by identity), and the plan.
Plans = dict[str, tuple[tuple[int, ...], _Plan]]


def _by_source(submissions: Sequence[Submission]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for index, submission in enumerate(submissions):
        found.setdefault(submission.source_id, []).append(index)
    return found


def _plan(
    submissions: Sequence[Submission],
    now: datetime,
    known: dict[str, dict[str, Any] | LogHarborError],
) -> _Plan:
    """Ids and times for the submissions' exchanges; no database."""
    records = [
        (s, n, record)
        for s, submission in enumerate(submissions)
        for n, record in enumerate(submission.exchanges)
    ]
    plan = _Plan([], [], [], [])
    fresh_ids = iter(new_ids(3 * len(records)))
    first: dict[str, tuple[int, int]] = {}
    for s, n, record in records:
        client_id = record.client_id
        if client_id is not None:
            if client_id in known:
                plan.known.append((s, n, known[client_id]))
                continue
            if client_id in first:
                plan.repeats.append((s, n, first[client_id]))
                continue
            first[client_id] = (s, n)
        record_id, request_id, response_id = next(fresh_ids), next(fresh_ids), next(fresh_ids)
        started_at = record.started_at
        plan.pending.append(
            PendingExchange(
                id=client_id or record_id,
                request_id=request_id,
                response_id=response_id,
                # A client's clock ahead of ours must not file records in the future.
                created_at=now if started_at is None or started_at > now else started_at,
                record=record,
            )
        )
        plan.places.append((s, n))
    return plan


def exchange_event(source_id: str, stored: StoredExchange) -> TrafficEvent:
    item, record = stored.pending, stored.pending.record
    return TrafficEvent(
        kind="traffic",
        id=item.id,
        traffic_source_id=source_id,
        domain_id=stored.domain_id,
        domain=stored.domain,
        pathname_id=stored.pathname_id,
        pathname=stored.pathname,
        method=record.method,
        status=record.status,
        level=record.level,
        elapsed_time=record.elapsed_time,
        traffic_user_id=record.traffic_user_id,
        created_at=item.created_at,
        response_preview=record.response.body.preview,
        route_pathname_id=stored.route_pathname_id,
        trace_id=record.trace_id,
        exception=record.exception,
    )


def generation_event(source_id: str, stored: StoredGeneration) -> GenerationEvent:
    item, call = stored.pending, stored.pending.call
    return GenerationEvent(
        id=item.id,
        traffic_source_id=source_id,
        created_at=item.created_at,
        provider=call.provider,
        model=call.response_model or call.request_model,
        route=call.route,
        prompt_id=stored.prompt_id,
        prompt_version=stored.prompt_version,
        input_tokens=call.input_tokens,
        output_tokens=call.output_tokens,
        cached_tokens=call.cached_tokens,
        cost=stored.cost,
        duration_ms=call.duration_ms,
        failed=call.error_type is not None,
        trace_id=call.trace_id,
    )


def log_event(source_id: str, stored: StoredLog) -> TrafficEvent:
    line = stored.pending.line
    return TrafficEvent(
        kind="core",
        id=stored.pending.id,
        traffic_source_id=source_id,
        domain_id=None,
        domain=None,
        pathname_id=stored.core_pathname_id,
        pathname=line.route,
        method=line.method or "",
        status=line.status or 0,
        level=line.level,
        elapsed_time=line.elapsed_ms or 0.0,
        traffic_user_id=line.user_id,
        created_at=stored.pending.created_at,
        response_preview=line.message,
        trace_id=line.trace_id,
        exception=line.exception,
    )


def record_answer(source_id: str, stored: StoredExchange) -> dict[str, Any]:
    """The stored record as ``GET /http-traffic-record/:source/:id`` shows it (full payloads)."""
    item, record = stored.pending, stored.pending.record
    request, response = record.request, record.response
    answer = queries.record_json(
        {
            "id": item.id,
            "status": record.status,
            "method": record.method,
            "level": record.level,
            "elapsed_time": record.elapsed_time,
            "traffic_user_id": record.traffic_user_id,
            "traffic_source_id": source_id,
            "domain_id": stored.domain_id,
            "pathname_id": stored.pathname_id,
            "created_at": item.created_at,
            "trace_id": record.trace_id,
            "span_id": record.span_id,
        },
        domain=stored.domain,
        protocol=stored.protocol,
        pathname=stored.pathname,
        request=queries.payload_json(
            _payload_row(item.request_id, source_id, request, item.created_at),
            full=True,
            query_params=True,
        ),
        response=queries.payload_json(
            _payload_row(item.response_id, source_id, response, item.created_at),
            full=True,
            query_params=False,
        ),
        route=record.route,
    )
    answer["exception"] = exception_json(record.exception)
    return answer


def _payload_row(payload_id: str, source_id: str, payload: Any, created_at: Any) -> dict[str, Any]:
    return {
        "id": payload_id,
        "traffic_source_id": source_id,
        "headers": payload.headers,
        "body": payload.body.text,
        "body_preview": payload.body.preview,
        "body_size": payload.body.size,
        "body_truncated": payload.body.truncated,
        "query_params": payload.query_params,
        "created_at": created_at,
    }
