"""A real LogHarbor server on a free port and Debian's Chromium, driven by Playwright.

The server runs uvicorn in a thread over the per-test database (so UI tests run on SQLite and on
PostgreSQL like every other storage test). The browser is Debian's ``/usr/bin/chromium``:
``playwright install`` needs the internet, the packaged browser does not.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from fixtures.sources import create_source
from fixtures.users import AUser
from logharbor.app import create_app
from logharbor.settings import Settings
from logharbor.ui.session import COOKIE
from ui.harness import LiveServer, csrf_of

CHROMIUM = os.environ.get("LOGHARBOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Screenshots land here when set (the README's images come from docs/screenshots).
SCREENSHOT_DIR_ENV = "LOGHARBOR_SCREENSHOTS"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Webhooks that post to a receiver on 127.0.0.1 (the sandbox resolves no public names).
    return settings.model_copy(update={"webhook_allow_http": True, "webhook_allow_private": True})


@pytest.fixture
def owned(client: TestClient, user: AUser) -> dict[str, Any]:
    """A source of ``user``, who is signed in to the pages on ``client``, and their CSRF token."""
    source = create_source(client, user, "Shop", trafficDomain="https://shop.example")
    client.cookies.set(COOKIE, user.token)
    base = f"/ui/sources/{source.id}"
    return {"id": source.id, "base": base, "csrf": csrf_of(client, f"{base}/settings")}


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings), log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # stops a broken start from hanging; no speed limit
    while not server.started:
        assert time.monotonic() < deadline, "the LogHarbor server never started"
        if not thread.is_alive():
            raise RuntimeError("the LogHarbor server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", settings=settings)
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client of the live server, closed after the test."""
    with live_server.api() as client:
        yield client


# Module scope, not session: while the sync driver lives it marks its event loop as running in
# the main thread, so a test run after a UI test (``pytest tests/ui tests/db``) could not call
# asyncio.run: it raised, and its coroutine was never awaited. (Package scope would be session
# scope here: tests/ui is no package.)
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    launched = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    ctx = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1280, "height": 860},
        timezone_id="Europe/Paris",
    )
    ctx.set_default_timeout(30_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    configured = os.environ.get(SCREENSHOT_DIR_ENV)
    target = Path(configured) if configured else tmp_path / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target
