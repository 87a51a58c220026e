"""Worker processes for ``logharbor serve``: each with its own listening socket on the port.

uvicorn's ``--workers`` share one listening socket, and whichever worker wakes first accepts
every connection waiting. A client that opens its connections at once (a proxy's keep-alive
pool, a collector fleet restarting, a load generator) can land them all on one worker while
the others idle: measured here, one run in three of the batch benchmark served at two thirds
of the speed of the others. With ``SO_REUSEPORT`` every worker listens on a socket of its own
and the kernel spreads new connections over them. A worker that dies is started again.

Also a command, so that benchmarks run other ASGI apps under the very same server::

    python -m logharbor.serving module:app [--factory] [--host H] [--port P] [--workers N]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("logharbor.serving")

BACKLOG = 2048


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
    _check_port_is_free(host, port)
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start(index: int) -> BaseProcess:
        process = context.Process(
            target=_worker,
            args=(app, host, port, options, os.getcwd()),
            name=f"logharbor-worker-{index}",
            daemon=False,
        )
        process.start()
        return process

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [start(index) for index in range(workers)]
    try:
        while not stop.wait(0.5):
            for index, process in enumerate(processes):
                if not process.is_alive():
                    log.warning(
                        "worker %s exited (%s); starting it again", process.pid, process.exitcode
                    )
                    processes[index] = start(index)
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)  # uvicorn finishes what it is serving
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _check_port_is_free(host: str, port: int) -> None:
    # Fail in the parent rather than in every worker; without SO_REUSEPORT, so that a port some
    # other server already listens on (with SO_REUSEPORT or not) is refused, not shared.
    _socket(host, port, reuse_port=False).close()


def _socket(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _worker(app: str, host: str, port: int, options: dict[str, Any], cwd: str) -> None:
    import uvicorn

    sys.path.insert(0, cwd)  # as uvicorn's --app-dir: the app module may live in the cwd
    sock = _socket(host, port)
    sock.listen(BACKLOG)
    config = uvicorn.Config(app, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[sock])


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
