"""A fake OpenAI-compatible provider on 127.0.0.1: chat completions as plain JSON, or as the SSE
stream the real API sends (with the usage chunk when ``stream_options.include_usage``)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "gpt-4o-mini-2024-07-18"
ANSWER = "Hello from the fake provider"
USAGE = {
    "prompt_tokens": 21,
    "completion_tokens": 6,
    "total_tokens": 27,
    "prompt_tokens_details": {"cached_tokens": 0},
}


def _completion() -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake-1",
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }


def _chunks(include_usage: bool) -> list[dict[str, Any]]:
    base = {
        "id": "chatcmpl-fake-2",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
    }
    words = ANSWER.split(" ")
    chunks = [
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": word if i == 0 else " " + word},
                    "finish_reason": None,
                }
            ],
        }
        for i, word in enumerate(words)
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if include_usage:
        chunks.append({**base, "choices": [], "usage": USAGE})
    return chunks


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self.path.endswith("/chat/completions"):
            self.send_error(404)
            return
        if request.get("stream"):
            include = bool((request.get("stream_options") or {}).get("include_usage"))
            body = "".join(f"data: {json.dumps(c)}\n\n" for c in _chunks(include))
            data = (body + "data: [DONE]\n\n").encode()
            kind = "text/event-stream"
        else:
            data, kind = json.dumps(_completion()).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


class FakeOpenAI:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
