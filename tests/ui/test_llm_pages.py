"""In a real browser: a record's page lists the LLM calls made while serving it and draws its
trace as a waterfall (HTTP span, LLM call, database span) positioned by start and duration."""

from __future__ import annotations

import json
import os

import httpx
from playwright.sync_api import Page, expect

from fixtures.sources import create_source, ingest_key
from fixtures.spans import JSON, START, span, traces
from fixtures.users import sign_up
from ui.harness import LiveServer, sign_in


def test_a_record_shows_its_llm_calls_and_its_trace_as_a_waterfall(
    page: Page, live_server: LiveServer, api: httpx.Client
) -> None:
    user = sign_up(api, "Jane", "jane@example.com")
    auth = user.headers
    source = create_source(api, user, "Shop", trafficDomain="https://shop.io")
    key = ingest_key(api, user, source.id)
    trace_id = os.urandom(16).hex()
    server = span(trace_id=trace_id, duration_ms=1000)
    chat = span(
        kind=3,
        trace_id=trace_id,
        duration_ms=500,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 500,
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": "Order shipped"}]}]
            ),
        },
    )
    chat["parentSpanId"] = server["spanId"]
    # The LLM call starts 400 ms into the 1 s request: its bar starts 40 % in, half as wide.
    chat["startTimeUnixNano"] = str(START + 400_000_000)
    chat["endTimeUnixNano"] = str(START + 900_000_000)
    query = span(kind=1, trace_id=trace_id, duration_ms=100, attributes={"db.system": "sqlite"})
    query["parentSpanId"] = server["spanId"]
    posted = api.post(
        "/v1/traces",
        content=json.dumps(traces(server, chat, query)).encode(),
        headers={"Authorization": f"Bearer {key}", **JSON},
    )
    assert posted.status_code == 200 and posted.json() == {}, posted.text
    [record] = api.get(f"/http-traffic-record/{source.id}", headers=auth).json()["data"]

    sign_in(page, user)
    page.goto(f"/ui/sources/{source.id}/records/{record['id']}")
    calls = page.get_by_test_id("record-llm-calls")
    expect(calls).to_contain_text("gpt-4o-mini")
    expect(calls).to_contain_text("Order shipped")
    expect(calls.get_by_test_id("llm-tokens")).to_have_text("1000 / 500")
    # gpt-4o-mini: 1000 * $0.15 + 500 * $0.60 per million.
    expect(calls.get_by_test_id("llm-cost")).to_have_text("$0.000450")

    waterfall = page.get_by_test_id("record-waterfall")
    expect(waterfall.get_by_test_id("wf-http")).to_have_count(1)
    http_bar = waterfall.get_by_test_id("wf-http")
    llm_bar = waterfall.get_by_test_id("wf-llm")
    assert (http_bar.get_attribute("data-left"), http_bar.get_attribute("data-width")) == (
        "0.0",
        "100.0",
    )
    assert (llm_bar.get_attribute("data-left"), llm_bar.get_attribute("data-width")) == (
        "40.0",
        "50.0",
    )
    expect(waterfall.get_by_test_id("wf-span")).to_have_count(1)
    # Drawn where the numbers say: the LLM bar starts 40 % into the track.
    track = llm_bar.locator(".wf-track").bounding_box()
    bar = llm_bar.locator(".wf-bar").bounding_box()
    assert track and bar
    assert abs((bar["x"] - track["x"]) / track["width"] - 0.4) < 0.01
    assert abs(bar["width"] / track["width"] - 0.5) < 0.01
