"""A worker-bound ASGI app for ``serving_workers.py``: about a millisecond of CPU per request."""

import os

PID = str(os.getpid()).encode()


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    sum(i * i for i in range(20_000))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": PID})
