"""``collector.prompt()`` against a real LogHarbor started by the test (both databases): the
prompt is fetched with the source's ingest key, compiled, and an ``openai`` call made with it
(to the fake provider) is stored as a log of that prompt version. The cache keeps serving while
LogHarbor is down, and a label moved on the server reaches the app on the next refresh."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from collector.fake_provider import REPLY, FakeProvider
from collector.harness import LogHarbor, running_logharbor, serve_asgi
from fixtures.waiting import wait_until
from logharbor.collector import (
    Collector,
    CompiledPrompt,
    PromptError,
    PromptUnavailable,
    PromptVariableMissing,
)
from logharbor.collector.prompts import Prompt

TITLE = "Summarize a support ticket"
# Long enough to see a moved label through several refresh passes; the tests wait for passes,
# never for time.
REFRESH = 0.1


@pytest.fixture
def logharbor(database_url: str, tmp_path: Path) -> Iterator[LogHarbor]:
    with running_logharbor(database_url, tmp_path / "data") as server:
        yield server


@pytest.fixture
def provider_url() -> Iterator[str]:
    fake = FakeProvider()
    with serve_asgi(fake.app()) as served:
        try:
            yield served.url
        finally:
            fake.gate.set()
            fake.release.set()


def _call(server: LogHarbor, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(
        method,
        f"{server.url}{path}",
        headers={"Authorization": f"Bearer {server.token}"},
        **kwargs,
    )
    assert response.is_success, response.text
    return response.json() if response.content else None


def _two_versions(server: LogHarbor) -> str:
    """A prompt whose version 1 is labelled production and version 2 is current."""
    prompt = _call(
        server,
        "POST",
        "/prompts",
        json={"title": TITLE, "content": "v1 for {team}: {ticket} {{raw}}", "model": "gpt-4o"},
    )
    prompt_id: str = prompt["_id"]
    _call(server, "PATCH", f"/prompts/{prompt_id}", json={"content": "v2 for {team}: {ticket}"})
    _call(server, "PUT", f"/prompts/{prompt_id}/labels/production", json={"version": 1})
    return prompt_id


def test_a_prompt_is_fetched_compiled_and_its_llm_calls_are_its_logs(
    logharbor: LogHarbor, provider_url: str
) -> None:
    prompt_id = _two_versions(logharbor)
    collector = Collector(
        logharbor.url,
        api_key=logharbor.ingest_key,
        flush_interval=0.05,
        prompt_refresh_interval=REFRESH,
    )
    collector.instrument_openai()
    try:
        production = collector.prompt(TITLE, label="production")
        assert (production.id, production.version, production.labels) == (
            prompt_id,
            1,
            ("production",),
        )
        current = collector.prompt(id=prompt_id)
        assert (current.version, current.title, current.model) == (2, TITLE, "gpt-4o")

        text = production.compile(team="ops", ticket="printer on fire")
        assert isinstance(text, CompiledPrompt) and isinstance(text, str)
        assert text == "v1 for ops: printer on fire {raw}"
        assert text.logharbor_prompt == (prompt_id, 1)

        with pytest.raises(PromptVariableMissing) as missing:
            production.compile(team="ops")
        assert isinstance(missing.value, KeyError)
        assert "{ticket}" in str(missing.value) and TITLE in str(missing.value)

        client = openai.OpenAI(base_url=f"{provider_url}/v1", api_key="sk-test", max_retries=0)
        answer = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": text},
            ],
        )
        assert answer.choices[0].message.content == REPLY
        assert collector.flush(30)
    finally:
        collector.uninstrument_openai()
        collector.close()

    def logs() -> list[dict[str, Any]]:
        response = httpx.get(
            f"{logharbor.url}/logs",
            params={"promptId": prompt_id},
            headers={"Authorization": f"Bearer {logharbor.token}"},
        )
        return response.json() if response.status_code == 200 else []  # type: ignore[no-any-return]

    wait_until(lambda: bool(logs()), "the call to be stored as a log of the prompt")
    [log] = logs()
    assert (log["promptVersion"], log["output"]) == (1, REPLY)
    assert log["generation"]["trafficSourceId"] == logharbor.source_id


def test_the_cache_follows_a_moved_label_and_outlives_the_server(logharbor: LogHarbor) -> None:
    prompt_id = _two_versions(logharbor)
    collector = Collector(
        logharbor.url, api_key=logharbor.ingest_key, prompt_refresh_interval=REFRESH
    )
    try:
        assert collector.prompt(TITLE, label="production").version == 1
        cache = collector.prompts

        _call(logharbor, "PUT", f"/prompts/{prompt_id}/labels/production", json={"version": 2})
        # A pass that was under way during the move may still bring version 1; the one after
        # it started after the move.
        assert cache.wait_for_refresh(cache.refreshes + 2, timeout=60)
        moved = collector.prompt(TITLE, label="production")
        assert (moved.version, moved.compile(team="a", ticket="b")) == (2, "v2 for a: b")

        # Unchanged versions came back as 304s, which are not failures.
        assert cache.refresh_failures == 0
        os.killpg(logharbor.process.pid, signal.SIGTERM)
        logharbor.process.wait()
        failures = cache.refresh_failures
        assert cache.wait_for_refresh(cache.refreshes + 2, timeout=60)
        assert cache.refresh_failures > failures
        kept = collector.prompt(TITLE, label="production")
        assert (kept.version, kept.content) == (2, "v2 for {team}: {ticket}")

        # A prompt never fetched has nothing to fall back on: a clear error, not a hang.
        with pytest.raises(PromptUnavailable, match="could not be reached"):
            collector.prompt("Some other prompt")
    finally:
        collector.close()


def test_unknown_prompts_and_labels_fail_clearly_on_first_fetch(logharbor: LogHarbor) -> None:
    prompt_id = _two_versions(logharbor)
    collector = Collector(logharbor.url, api_key=logharbor.ingest_key)
    try:
        with pytest.raises(PromptUnavailable, match="404"):
            collector.prompt("No such prompt")
        with pytest.raises(PromptUnavailable, match="no such label"):
            collector.prompt(id=prompt_id, label="staging")
        with pytest.raises(PromptError):
            collector.prompt(TITLE, id=prompt_id)
    finally:
        collector.close()


def test_compile_braces_formats_and_bad_templates() -> None:
    def prompt(content: str) -> Prompt:
        return Prompt("prompt1", 3, "T", content, "m", (), (), "prompt1:3")

    assert prompt("{{a}} {b!r} {c:>4}").compile(b="x", c=7, unused=1) == "{a} 'x'    7"
    with pytest.raises(PromptError, match="literal braces"):
        prompt("a { b").compile()
    with pytest.raises(PromptError, match="placeholders are names"):
        prompt("{0} {a.b}").compile(a=1)


class _SlowResolver:
    """``GET /prompts/resolve`` that answers only once ``gate`` is set: a first fetch that is
    still waiting for the network."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.asked = 0

    def app(self) -> Starlette:
        async def resolve(request: Request) -> JSONResponse:
            self.asked += 1
            if request.query_params.get("title") != TITLE:
                return JSONResponse({"error": "Prompt not found"}, status_code=404)
            await asyncio.to_thread(self.gate.wait, 30)
            body = {"_id": "prompt1", "version": 3, "title": TITLE, "content": "Hi {name}"}
            return JSONResponse({**body, "model": "gpt-4o", "labels": ["production"]})

        return Starlette(routes=[Route("/prompts/resolve", resolve)])


def test_aprompt_never_blocks_the_event_loop() -> None:
    resolver = _SlowResolver()
    with serve_asgi(resolver.app()) as served:
        collector = Collector(served.url, api_key="lhk_test", timeout=30)

        async def scenario() -> None:
            fetching = asyncio.create_task(collector.aprompt(TITLE, label="production"))
            # Only this coroutine, on the same loop, lets the server answer: had the first
            # fetch blocked the loop, this would never run and the fetch never end.
            while resolver.asked == 0:
                await asyncio.sleep(0.01)
            assert not fetching.done()
            resolver.gate.set()
            prompt = await fetching
            assert (prompt.version, prompt.compile(name="Ann")) == (3, "Hi Ann")
            # Held now: served from memory, no second request.
            assert await collector.aprompt(TITLE, label="production") is prompt
            assert resolver.asked == 1
            with pytest.raises(PromptUnavailable):
                await collector.aprompt("No such prompt")
            with pytest.raises(PromptError):
                await collector.aprompt(TITLE, id="prompt1")

        try:
            asyncio.run(scenario())
        finally:
            resolver.gate.set()
            collector.close()
