"""Worker processes for ``logharbor serve``: each with its own listening socket on the port.

uvicorn's ``--workers`` share one listening socket, and whichever worker wakes first accepts
every connection waiting. A client that opens its connections at once (a proxy's keep-alive
pool, a collector fleet restarting, a load generator) can land them all on one worker while
the others idle: measured here, one run in three of the batch benchmark served at two thirds
of the speed of the others. With ``SO_REUSEPORT`` every worker listens on a socket of its own
and the kernel spreads new connections over them, by a hash: a few long-lived connections still
split unevenly (6 and 2 of 8, say, and the busy worker sets the pace). So the workers also post
their connection counts on a shared board, and one holding more than its share answers its next
request with ``Connection: close`` (at most one per ``SHED_INTERVAL_S``): the client reconnects,
and the new connection lands by a new hash, until the split is even. A worker that dies is
started again, after a pause that doubles while it keeps dying at once.

Also a command, so that benchmarks run other ASGI apps under the very same server::

    python -m logharbor.serving module:app [--factory] [--host H] [--port P] [--workers N]
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableSequence, Sized
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("logharbor.serving")

BACKLOG = 2048
# How often a worker may ask one client to reconnect elsewhere.
SHED_INTERVAL_S = 0.02
# A worker that exits within this long of its start is restarted after a growing pause.
QUICK_EXIT_S = 10.0
MAX_RESTART_PAUSE_S = 30.0

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def run(
    app: str,
    *,
    factory: bool,
    host: str,
    port: int,
    workers: int,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve ``app`` (``module:attribute``) until SIGINT or SIGTERM."""
    import uvicorn

    options: dict[str, Any] = {
        "factory": factory,
        "log_level": log_level,
        "access_log": access_log,
    }
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    claim = _claim_port(host, port)
    context = multiprocessing.get_context("spawn")
    # Each worker's open connections, read by all (see ConnectionBalancer).
    board = context.Array("q", workers, lock=False)
    stop = threading.Event()

    def start(index: int) -> BaseProcess:
        board[index] = 0
        process = context.Process(
            target=_worker,
            args=(app, host, port, options, os.getcwd(), board, index),
            name=f"logharbor-worker-{index}",
            daemon=False,
        )
        process.start()
        return process

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [start(index) for index in range(workers)]
    started = [time.monotonic()] * workers
    restart_at: list[float | None] = [None] * workers
    pauses = [0.0] * workers
    try:
        while not stop.wait(0.5):
            now = time.monotonic()
            for index, process in enumerate(processes):
                if process.is_alive():
                    continue
                if restart_at[index] is None:
                    # A worker that dies at once (a bad setting, a database that is down) would
                    # otherwise be restarted twice a second for ever.
                    if now - started[index] < QUICK_EXIT_S:
                        pauses[index] = min(max(2 * pauses[index], 1.0), MAX_RESTART_PAUSE_S)
                    else:
                        pauses[index] = 0.0
                    restart_at[index] = now + pauses[index]
                    log.warning(
                        "worker %s exited (%s); starting it again in %.0f s",
                        process.pid,
                        process.exitcode,
                        pauses[index],
                    )
                if now >= (restart_at[index] or 0.0):
                    processes[index] = start(index)
                    started[index], restart_at[index] = now, None
    finally:
        claim.close()
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)  # uvicorn finishes what it is serving
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class ConnectionBalancer:
    """Asks a keep-alive client to reconnect when this worker holds more than its share.

    ``connections`` is this worker's set of open connections (uvicorn's server state); ``board``
    holds every worker's count. Only a hint for where load lands: no answer depends on it.
    """

    def __init__(
        self,
        app: ASGIApp,
        connections: Sized,
        board: MutableSequence[int],
        index: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.connections = connections
        self.board = board
        self.index = index
        self.clock = clock
        self._next_look = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._over_share():
            await self.app(scope, receive, send)
            return

        async def send_and_close(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_and_close)

    def _over_share(self) -> bool:
        now = self.clock()
        if now < self._next_look:
            return False
        self._next_look = now + SHED_INTERVAL_S
        mine = len(self.connections)
        self.board[self.index] = mine
        return mine > math.ceil(sum(self.board) / len(self.board))


def _claim_port(host: str, port: int) -> socket.socket:
    """The port, refused if another server listens on it, and held for as long as we serve.

    The check binds without SO_REUSEPORT, so that a port some other server listens on (with
    SO_REUSEPORT or not) is refused, not shared, and it fails here rather than in every worker.
    Workers listen only once their app has started, so the check alone would pass during our own
    start-up; the claim (SO_REUSEPORT without SO_REUSEADDR, never listening) lets our workers bind
    beside it and makes a second server's check fail at any moment."""
    _socket(host, port, reuse_port=False).close()
    return _socket(host, port, reuse_addr=False)


def _socket(
    host: str, port: int, *, reuse_port: bool = True, reuse_addr: bool = True
) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    if reuse_addr:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _worker(
    app: str,
    host: str,
    port: int,
    options: dict[str, Any],
    cwd: str,
    board: MutableSequence[int],
    index: int,
) -> None:
    import uvicorn

    sys.path.insert(0, cwd)  # as uvicorn's --app-dir: the app module may live in the cwd
    # Bound here but not listening: uvicorn listens once the app is loaded and its lifespan has
    # started. The kernel spreads connections only over listening sockets, so a restarted worker
    # takes none while it is still importing (seen: health checks queued behind a worker's
    # seconds-long start, under load, timed out while the other worker was idle).
    sock = _socket(host, port)
    config = uvicorn.Config(app, host=host, port=port, backlog=BACKLOG, **options)
    server = uvicorn.Server(config)
    config.load()
    config.loaded_app = ConnectionBalancer(
        config.loaded_app, server.server_state.connections, board, index
    )
    server.run(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m logharbor.serving")
    parser.add_argument("app", help="module:attribute")
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    run(
        args.app,
        factory=args.factory,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    main()
