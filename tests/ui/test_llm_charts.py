"""In a real browser: the charts page's LLM section draws tokens and cost over time (uPlot) and
ranks routes, models and prompt versions by cost, costliest first, from the LLM rollups."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from fixtures.sources import create_source, ingest_key
from fixtures.spans import JSON, llm_call, traces
from fixtures.users import sign_up
from ui.harness import LiveServer, sign_in


def _call(route: str, model: str, tokens: tuple[int, int], prompt: str | None = None) -> Any:
    item = llm_call(0, route, model, (*tokens, 0), prompt=(prompt, 1) if prompt else None)
    # Within the charts' last hour (the shared helpers start in January 2026).
    begin = time.time_ns() - 5 * 60 * 1_000_000_000
    item["startTimeUnixNano"] = str(begin)
    item["endTimeUnixNano"] = str(begin + 300_000_000)
    return item


def _names(page: Page, key: str) -> list[str]:
    table = page.get_by_test_id(f"llm-cost-per-{key}")
    return [name.strip() for name in table.get_by_test_id("llm-group-name").all_inner_texts()]


def test_the_charts_page_shows_llm_tokens_and_cost_per_route_model_and_prompt_version(
    page: Page, live_server: LiveServer, api: httpx.Client
) -> None:
    user = sign_up(api, "Jane", "jane@example.com")
    auth = user.headers
    source = create_source(api, user, "Shop", trafficDomain="https://shop.io")
    key = ingest_key(api, user, source.id)
    prompt = api.post(
        "/prompts",
        headers=auth,
        json={"title": "Summarize a ticket", "content": "Sum {t}", "model": "gpt-4o"},
    ).json()["_id"]
    calls = [
        # /chat: 2 x (1000 * $0.15 + 500 * $0.60) / 1M = $0.0009
        _call("/chat", "gpt-4o-mini", (1000, 500)),
        _call("/chat", "gpt-4o-mini", (1000, 500)),
        # /summarize: 1000 * $2.50 + 1000 * $10 per million = $0.0125, the costliest.
        _call("/summarize", "gpt-4o", (1000, 1000), prompt),
    ]
    posted = api.post(
        "/v1/traces",
        content=json.dumps(traces(*calls)).encode(),
        headers={"Authorization": f"Bearer {key}", **JSON},
    )
    assert posted.status_code == 200 and posted.json() == {}, posted.text

    sign_in(page, user)
    page.goto(f"/ui/sources/{source.id}/charts")
    section = page.get_by_test_id("llm-charts")
    expect(section.get_by_test_id("llm-total-calls")).to_have_text("3")
    expect(section.get_by_test_id("llm-total-input")).to_have_text("3000")
    expect(section.get_by_test_id("llm-total-cost")).to_have_text("$0.0134")
    expect(page.locator("#chart-llm-tokens[data-ready] canvas")).to_be_visible()
    expect(page.locator("#chart-llm-cost[data-ready] canvas")).to_be_visible()

    assert _names(page, "route") == ["/summarize", "/chat"]
    assert _names(page, "model") == ["gpt-4o", "gpt-4o-mini"]
    assert _names(page, "promptVersion") == ["Summarize a ticket v1", "(no prompt)"]
    costs = page.get_by_test_id("llm-cost-per-route").get_by_test_id("llm-group-cost")
    expect(costs).to_have_text(["$0.012500", "$0.000900"])

    # "Which endpoint costs us most?": from the prompt version, one click to its prompt.
    page.get_by_test_id("llm-cost-per-promptVersion").get_by_role("link").click()
    expect(page).to_have_url(f"{live_server.url}/ui/prompts/{prompt}")


def test_a_bad_range_is_refused_on_the_llm_section(
    page: Page, live_server: LiveServer, api: httpx.Client
) -> None:
    user = sign_up(api, "Jane", "jane@example.com")
    source = create_source(api, user, "Shop", trafficDomain="https://shop.io")
    sign_in(page, user)
    answer = page.goto(f"/ui/sources/{source.id}/charts/llm?range=forever")
    assert answer is not None and answer.status == 400
    expect(page.get_by_text("Unknown time range")).to_be_visible()
