"""An app instrumented with nothing but OpenTelemetry shows up in LogHarbor like one with its
collector: a real FastAPI app with the official instrumentation and OTLP/HTTP exporters (spans
and ``logging``), in a process of its own, against ``logharbor serve`` started by the test, on
both databases and both HTTP semantic-convention generations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.harness import LogHarbor, running_logharbor

APP = Path(__file__).with_name("otel_app.py")


@pytest.fixture
def logharbor(database_url: str, tmp_path: Path) -> Iterator[LogHarbor]:
    with running_logharbor(database_url, tmp_path / "data") as server:
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("semconv", ["", "http"], ids=["old-attributes", "stable-attributes"])
def test_an_opentelemetry_app_shows_up_with_exceptions_logs_and_traces(
    logharbor: LogHarbor, semconv: str
) -> None:
    env = {**os.environ, "OTEL_SEMCONV_STABILITY_OPT_IN": semconv}
    run = subprocess.run(
        [sys.executable, str(APP), logharbor.url, logharbor.ingest_key],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    traces: dict[str, str] = json.loads(run.stdout.strip().splitlines()[-1])

    # force_flush returned once the exporter had its answers: everything is stored by now.
    records = {record["pathname"]: record for record in logharbor.records()}
    assert set(records) == {"/orders/42", "/missing", "/pay"}
    order = records["/orders/42"]
    assert (order["method"], order["status"], order["level"]) == ("GET", 200, "INFO")
    assert order["routeTemplate"] == "/orders/{order_id}"
    assert order["domain"].startswith("http://127.0.0.1:")
    assert order["traceId"] == traces["/orders/42"]
    assert order["elapsedTime"] > 0
    assert records["/missing"]["level"] == "WARNING"
    detail = logharbor.detail(order["id"])
    assert detail["request"]["queryParams"] == {"expand": "items"}

    paid = logharbor.detail(records["/pay"]["id"])
    assert (paid["status"], paid["level"]) == (500, "FATAL")
    exception = paid["exception"]
    assert exception["type"].endswith("PaymentDeclined")
    assert "card 4242 declined" in exception["message"]
    assert any(frame["function"] == "pay" for frame in exception["frames"])
    assert "PaymentDeclined" in exception["stacktrace"]
    # The trace id finds the request, and the request's trace finds its log lines.
    [by_trace] = logharbor.records(traceId=traces["/pay"])
    assert by_trace["id"] == paid["id"]
    lines: list[dict[str, Any]] = logharbor.get(
        f"/core-log/{logharbor.source_id}", traceId=traces["/pay"]
    )["data"]
    assert [(line["message"], line["level"]) for line in lines] == [("payment failed", "FATAL")]
    info = logharbor.get(f"/core-log/{logharbor.source_id}", traceId=traces["/orders/42"])
    assert [line["message"] for line in info["data"]] == ["order 42 looked up"]
    # The exception is grouped with its type and shown with its stack trace.
    groups = logharbor.get(f"/exceptions/{logharbor.source_id}")["data"]
    typed = [group for group in groups if "PaymentDeclined" in group["message"]]
    assert len(typed) == 1
    assert typed[0]["sample"]["exception"]["stacktrace"]
