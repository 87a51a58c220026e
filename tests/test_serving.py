"""The worker launcher: connections spread evenly over the workers, quick deaths back off."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.network import free_port
from logharbor import serving


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _respond(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _serve_one(balancer: serving.ConnectionBalancer, scope_type: str = "http") -> list[Any]:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    asyncio.run(balancer({"type": scope_type}, receive, send))
    return sent


def _closes(sent: list[Any]) -> bool:
    return (b"connection", b"close") in sent[0]["headers"]


def test_a_worker_over_its_share_asks_one_client_at_a_time_to_reconnect() -> None:
    clock = Clock()
    connections = set(range(6))
    board = [0, 2]  # the other worker holds 2: 8 in all, a share of 4 each
    balancer = serving.ConnectionBalancer(_respond, connections, board, 0, clock=clock)

    sent = _serve_one(balancer)
    assert _closes(sent) and (b"x-a", b"1") in sent[0]["headers"]
    assert sent[1]["body"] == b"ok" and board == [6, 2]
    # Not again before the interval: one reconnection at a time, not a stampede.
    clock.now += serving.SHED_INTERVAL_S / 2
    assert not _closes(_serve_one(balancer))
    clock.now += serving.SHED_INTERVAL_S
    assert _closes(_serve_one(balancer))

    connections.difference_update({4, 5})  # the two reconnected to the other worker
    board[1] = 4
    clock.now += serving.SHED_INTERVAL_S
    assert not _closes(_serve_one(balancer)) and board == [4, 4]
    connections.update({4, 5})  # 6 of 10: a share is 5, so one too many
    clock.now += serving.SHED_INTERVAL_S
    assert _closes(_serve_one(balancer))


def test_an_uneven_total_and_other_scopes_are_left_alone() -> None:
    clock = Clock()
    board = [0, 1]
    balancer = serving.ConnectionBalancer(_respond, {1, 2}, board, 0, clock=clock)
    assert not _closes(_serve_one(balancer))  # 2 of 3: the share rounds up to 2
    seen: list[str] = []

    async def lifespan(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    other = serving.ConnectionBalancer(lifespan, set(range(9)), [0, 0], 0, clock=clock)
    clock.now += 1
    assert _serve_one(other, "lifespan") == [] and seen == ["lifespan"]


SERVE = (sys.executable, "-m", "logharbor.serving")
APP = """
import os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
"""


@pytest.mark.slow
def test_keep_alive_connections_end_up_split_evenly_over_the_workers(tmp_path: Path) -> None:
    (tmp_path / "pid_app.py").write_text(APP)
    port = free_port()
    process = subprocess.Popen(
        [*SERVE, "pid_app:app", "--port", str(port), "--workers", "2", "--log-level", "warning"],
        cwd=tmp_path,
    )
    clients = [
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        for _ in range(8)
    ]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                clients[0].get("/")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the workers did not start"
                time.sleep(0.2)
        # Every client keeps one connection open, as a proxy's pool would. Whatever worker each
        # lands on first, the split ends up at 4 and 4 and then stays there.
        stable_rounds = 0
        while stable_rounds < 20:
            assert time.monotonic() < deadline, "the connections never split evenly"
            pids = Counter(client.get("/").text for client in clients)
            even = len(pids) == 2 and set(pids.values()) == {4}
            stable_rounds = stable_rounds + 1 if even else 0
            time.sleep(serving.SHED_INTERVAL_S)
    finally:
        for client in clients:
            client.close()
        process.send_signal(signal.SIGTERM)
        process.wait(60)


@pytest.mark.slow
def test_a_worker_that_dies_at_once_is_restarted_after_growing_pauses(tmp_path: Path) -> None:
    pauses: list[str] = []
    # Leaving the ``with`` closes the stderr pipe once the supervisor has stopped.
    with subprocess.Popen(
        [*SERVE, "no_such_module:app", "--port", str(free_port()), "--workers", "2"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stderr is not None
        try:
            for line in process.stderr:
                if "starting it again in" in line:
                    pauses.append(line.rsplit("starting it again in", 1)[1].strip())
                if len(pauses) >= 6:
                    break
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
    # Two workers, each restarted after 1, 2 and then 4 seconds.
    assert sorted(pauses) == ["1 s", "1 s", "2 s", "2 s", "4 s", "4 s"]


def test_a_claimed_port_takes_our_workers_and_refuses_a_second_server() -> None:
    """Workers listen only once their app has started; until then the claim alone must keep a
    second server (whose check binds without SO_REUSEPORT) off the port."""
    port = free_port()
    claim = serving._claim_port("127.0.0.1", port)
    try:
        worker = serving._socket("127.0.0.1", port)  # bound, not yet listening
        try:
            with pytest.raises(OSError):
                serving._claim_port("127.0.0.1", port)
            worker.listen()
            with pytest.raises(OSError):
                serving._claim_port("127.0.0.1", port)
        finally:
            worker.close()
    finally:
        claim.close()
    serving._claim_port("127.0.0.1", port).close()  # released with the server
