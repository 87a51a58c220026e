"""An app instrumented only by OpenTelemetry's own ``opentelemetry-instrumentation-openai-v2``,
run by ``test_openai_v2.py`` in a process of its own (providers and content capture are set once
per process). Usage: ``python openai_v2_app.py LOGHARBOR_URL INGEST_KEY [CAPTURE_MODE]``.

Inside a SERVER span with HTTP attributes (the request an app serves), it calls a fake OpenAI on
127.0.0.1 with the real ``openai`` SDK, once plainly and once streamed; spans and the GenAI log
events go to LogHarbor over OTLP/HTTP. It flushes, then prints the trace id as one JSON line.
"""

from __future__ import annotations

import json
import os
import sys

os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
# SPAN_AND_EVENT, or EVENT_ONLY: the content then travels only in the details log event.
os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = (
    sys.argv[3] if len(sys.argv) > 3 else "SPAN_AND_EVENT"
)

import openai
from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from collector.fake_provider import FakeProvider
from collector.harness import serve_asgi


def main() -> None:
    url, key = sys.argv[1], sys.argv[2]
    headers = {"Authorization": f"Bearer {key}"}
    resource = Resource.create({"service.name": "summarizer"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=headers))
    )
    trace.set_tracer_provider(tracer_provider)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs", headers=headers))
    )
    set_logger_provider(logger_provider)
    OpenAIInstrumentor().instrument()

    tracer = trace.get_tracer("summarizer")
    with serve_asgi(FakeProvider().app()) as provider:
        client = openai.OpenAI(base_url=f"{provider.url}/v1", api_key="sk-test", max_retries=0)
        with tracer.start_as_current_span(
            "POST /summarize",
            kind=trace.SpanKind.SERVER,
            attributes={
                "http.request.method": "POST",
                "http.response.status_code": 200,
                "url.scheme": "http",
                "server.address": "summarizer.example.com",
                "url.path": "/summarize",
                "http.route": "/summarize",
            },
        ) as span:
            messages = [{"role": "user", "content": "Summarize: the cat sat on the mat"}]
            client.chat.completions.create(model="gpt-4o-mini", messages=messages, temperature=0.2)
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            streamed = "".join(
                chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices
            )
            trace_id = format(span.get_span_context().trace_id, "032x")
    assert tracer_provider.force_flush() and logger_provider.force_flush()
    print(json.dumps({"traceId": trace_id, "streamed": streamed}))


if __name__ == "__main__":
    main()
