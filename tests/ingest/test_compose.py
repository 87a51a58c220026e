"""The compose front-end's trace fields: stored and answered, and refused by name when bad."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from fixtures.records import body
from fixtures.sources import Source
from fixtures.users import AUser

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
EXCEPTION = {
    "type": "shop.PaymentDeclined",
    "message": "card declined, token=abc123",
    "stacktrace": 'Traceback:\n  File "/app/pay.py", line 3, in pay\nPaymentDeclined',
    "frames": [{"file": "/app/pay.py", "line": 3, "function": "pay"}],
}


def test_trace_ids_and_the_exception_are_stored_masked_and_answered(
    client: TestClient, user: AUser, source: Source
) -> None:
    sid = source.id
    sent = body(status=500, traceId=TRACE.upper(), spanId=SPAN, exception=EXCEPTION)
    created = client.post(f"/http-traffic-record/{sid}", json=sent, headers=user.headers)
    assert created.status_code == 201, created.text
    for answer in (
        created.json(),
        client.get(
            f"/http-traffic-record/{sid}/{created.json()['id']}", headers=user.headers
        ).json(),
    ):
        assert (answer["traceId"], answer["spanId"]) == (TRACE, SPAN)
        assert answer["exception"]["type"] == "shop.PaymentDeclined"
        assert "abc123" not in answer["exception"]["message"]
        assert answer["exception"]["frames"] == EXCEPTION["frames"]


def test_bad_trace_fields_are_named_and_store_nothing(
    client: TestClient,
    user: AUser,
    source: Source,
    rows: Callable[[], dict[str, int]],
) -> None:
    sid = source.id
    before = rows()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"traceId": "abc"}, "traceId"),
        ({"traceId": "0" * 32}, "traceId"),
        ({"traceId": "g" * 32}, "traceId"),
        ({"traceId": 12}, "traceId"),
        ({"spanId": "0" * 16}, "spanId"),
        ({"spanId": TRACE}, "spanId"),
        ({"exception": "boom"}, "exception"),
        ({"exception": {"message": "no type"}}, "exception.type"),
        ({"exception": {"type": "X", "message": "nul\u0000here"}}, "exception"),
        ({"exception": {"type": "X", "stacktrace": "\ud800"}}, "exception"),
        (
            {"exception": {"type": "X", "frames": [{"file": "a", "function": "f", "line": -1}]}},
            "exception.frames.0.line",
        ),
        ({"exception": {"type": "X", "frames": "nope"}}, "exception.frames"),
    ]
    for extra, field in cases:
        for path, payload in (
            (f"/http-traffic-record/{sid}", body(**extra)),
            (f"/http-traffic-record/{sid}/batch", [body(**extra)]),
        ):
            # json.dumps escapes the lone surrogate, as a client's JSON may.
            answer = client.post(
                path,
                content=json.dumps(payload),
                headers={**user.headers, "Content-Type": "application/json"},
            )
            assert answer.status_code == 400, (extra, answer.text)
            errors = answer.json()["fieldErrors"]
            assert any(name.endswith(field) for name in errors), (extra, errors)
    assert rows() == before
