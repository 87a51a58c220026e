"""OpenTelemetry's own OpenAI instrumentation, exporting over OTLP to a LogHarbor started by the
test: the LLM calls show up with their model, tokens, cost and content, in the trace of the
request that made them, on both databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.fake_provider import REPLY
from collector.harness import LogHarbor, running_logharbor

APP = Path(__file__).with_name("openai_v2_app.py")


@pytest.fixture
def logharbor(database_url: str, tmp_path: Path) -> Iterator[LogHarbor]:
    with running_logharbor(database_url, tmp_path / "data") as server:
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("capture", ["SPAN_AND_EVENT", "EVENT_ONLY"])
def test_openai_v2_instrumentation_calls_are_generations_in_their_requests_trace(
    logharbor: LogHarbor, capture: str
) -> None:
    # EVENT_ONLY: the spans carry no content, their details log events (another export) do.
    # The app borrows the collector tests' fake provider (tests/collector/fake_provider.py).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(APP.parent.parent), *sys.path])}
    run = subprocess.run(
        [sys.executable, str(APP), logharbor.url, logharbor.ingest_key, capture],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    trace_id = result["traceId"]
    assert result["streamed"] == REPLY

    # force_flush returned once the exporter had its answers: everything is stored by now.
    source = logharbor.source_id
    calls = logharbor.get(f"/generations/{source}", traceId=trace_id)["data"]
    assert len(calls) == 2
    for call in calls:
        assert call["provider"] == "openai" and call["requestModel"] == "gpt-4o-mini"
        assert call["responseModel"] == "gpt-4o-mini-2024-07-18"
        assert (call["inputTokens"], call["outputTokens"]) == (21, 5)
        cached = call["cachedTokens"] or 0  # whether 2.4b0 reports them is its own business
        price = (21 - cached) * 0.15 + cached * 0.075 + 5 * 0.60
        assert call["cost"] == pytest.approx(price / 1e6)
        assert call["finishReasons"] == ["stop"]
        assert call["outputPreview"] == REPLY
        detail = logharbor.get(f"/generations/{source}/{call['id']}")
        assert "the cat sat on the mat" in json.dumps(detail["inputMessages"])
    [record] = logharbor.records(traceId=trace_id)
    assert record["pathname"] == "/summarize"
    waterfall = logharbor.get(f"/traces/{source}/{trace_id}")
    assert sorted(item["kind"] for item in waterfall["items"]) == ["http", "llm", "llm"]
    assert all(
        item["parentSpanId"] == record["spanId"]
        for item in waterfall["items"]
        if item["kind"] == "llm"
    )
    # Its GenAI log events carried the same content as the spans: no log lines of their own.
    assert logharbor.get(f"/core-log/{source}", traceId=trace_id)["data"] == []
