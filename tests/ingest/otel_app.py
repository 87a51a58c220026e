"""An app instrumented with nothing but OpenTelemetry, run by ``test_otlp_sdk.py`` in a process
of its own (the SDK's providers and the semantic-convention choice are set once per process).

Usage: ``python otel_app.py LOGHARBOR_URL INGEST_KEY``. It serves a FastAPI app on 127.0.0.1
with the official FastAPI instrumentation, exports spans and ``logging`` records to LogHarbor
over OTLP/HTTP protobuf (gzip), calls its own routes, flushes and exits. It prints one JSON
line: the trace id of each call, by path.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time

import httpx
import uvicorn
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


class PaymentDeclined(Exception):
    pass


def main() -> None:
    url, key = sys.argv[1], sys.argv[2]
    headers = {"Authorization": f"Bearer {key}"}
    resource = Resource.create({"service.name": "shop"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(
                endpoint=f"{url}/v1/traces", headers=headers, compression=Compression.Gzip
            )
        )
    )
    trace.set_tracer_provider(tracer_provider)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs", headers=headers))
    )
    set_logger_provider(logger_provider)
    log = logging.getLogger("shop.orders")
    log.setLevel(logging.INFO)
    log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=logger_provider))

    app = FastAPI()
    seen: dict[str, str] = {}

    def remember(path: str) -> None:
        seen[path] = format(trace.get_current_span().get_span_context().trace_id, "032x")

    @app.get("/orders/{order_id}")
    def order(order_id: int) -> dict[str, int]:
        remember(f"/orders/{order_id}")
        log.info("order %s looked up", order_id)
        return {"id": order_id}

    @app.get("/missing")
    def missing() -> None:
        remember("/missing")
        log.warning("nothing here")
        from fastapi import HTTPException

        raise HTTPException(404, "no such thing")

    @app.post("/pay")
    def pay() -> None:
        remember("/pay")
        log.error("payment failed")
        raise PaymentDeclined("card 4242 declined")

    FastAPIInstrumentor.instrument_app(app)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/orders/42?expand=items").status_code == 200
    assert httpx.get(f"{base}/missing").status_code == 404
    assert httpx.post(f"{base}/pay").status_code == 500
    server.should_exit = True
    thread.join()
    tracer_provider.force_flush()
    logger_provider.force_flush()
    tracer_provider.shutdown()
    logger_provider.shutdown()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
