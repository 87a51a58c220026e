"""Django middleware on a real Django app served by werkzeug on 127.0.0.1."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from collector.fake_provider import REPLY, FakeProvider
from collector.harness import MemoryTransport, drain, serve_asgi, serve_wsgi
from logharbor.collector import Collector, current_trace

INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
# Where the LLM view finds the fake provider (started by its test).
PROVIDER: dict[str, str] = {}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class PaymentFailed(Exception):
    """An app's own exception: sent as ``module.QualName``."""


def _views() -> types.ModuleType:
    from django.http import Http404, HttpResponse, JsonResponse
    from django.urls import path

    def item(request: Any, item_id: int) -> JsonResponse:
        request.user_ref = f"user-{item_id}"
        return JsonResponse({"id": item_id, "token": "server-secret"})

    def login(request: Any) -> JsonResponse:
        body = json.loads(request.body)
        return JsonResponse({"user": body["user"]}, status=201)

    def form(request: Any) -> JsonResponse:
        return JsonResponse({"name": request.POST["name"]})

    def crash(request: Any) -> HttpResponse:
        raise RuntimeError("the view crashed")

    def pay(request: Any) -> HttpResponse:
        raise PaymentFailed("declined: api_key=ak_live_9")

    def hidden(request: Any) -> HttpResponse:
        raise Http404("no such page")

    def trace(request: Any) -> JsonResponse:
        current = current_trace()
        assert current is not None
        return JsonResponse({"traceId": current.trace_id, "spanId": current.span_id})

    def summarize(request: Any, ticket: int) -> JsonResponse:
        import openai

        client = openai.OpenAI(base_url=f"{PROVIDER['url']}/v1", api_key="sk-test", max_retries=0)
        answer = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Summarize ticket {ticket}"}],
        )
        return JsonResponse({"text": answer.choices[0].message.content})

    module = types.ModuleType("logharbor_django_test_urls")
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("items/<int:item_id>", item),
        path("login", login),
        path("form", form),
        path("crash", crash),
        path("pay", pay),
        path("hidden", hidden),
        path("trace", trace),
        path("tickets/<int:ticket>/summary", summarize),
    ]
    return module


@dataclass
class Site:
    url: str
    collector: Collector
    transport: MemoryTransport


@pytest.fixture(scope="module")
def django_site() -> Iterator[Site]:
    """Django can be configured once per process: this module is its only user."""
    import django
    from django.conf import settings

    transport = MemoryTransport()
    collector = Collector(transport=transport, flush_interval=0.05)
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="django-test-secret",
            ALLOWED_HOSTS=["127.0.0.1"],
            ROOT_URLCONF="logharbor_django_test_urls",
            MIDDLEWARE=["logharbor.collector.django.LogHarborMiddleware"],
            INSTALLED_APPS=[],
            LOGHARBOR={
                "collector": collector,
                "capture_bodies": True,
                "max_body_bytes": 1024,
                "user_id": lambda request: getattr(request, "user_ref", None),
                "exclude_paths": ["/health"],
            },
            LOGGING_CONFIG=None,
        )
        django.setup()
    sys.modules["logharbor_django_test_urls"] = _views()
    from django.core.wsgi import get_wsgi_application

    with serve_wsgi(get_wsgi_application()) as served:
        yield Site(served.url, collector, transport)
    collector.close()


def test_django_requests_are_recorded(django_site: Site) -> None:
    with httpx.Client(base_url=django_site.url) as client:
        item = client.get("/items/5?x=1&secret=s", headers={"Authorization": "Bearer t"})
        assert item.json() == {"id": 5, "token": "server-secret"}
        login = client.post("/login", json={"user": "jane", "password": "hunter2"})
        assert login.status_code == 201
        assert client.post("/form", data={"name": "Ann", "password": "pw"}).json() == {
            "name": "Ann"
        }
        assert client.get("/crash").status_code == 500
        assert client.get("/health").status_code == 404
        assert client.get("/nowhere").status_code == 404
    drain(django_site.collector, 5)
    by_path = {r["pathnameUrl"]: r for r in django_site.transport.records}
    assert set(by_path) == {"/items/5", "/login", "/form", "/crash", "/nowhere"}
    item_record = by_path["/items/5"]
    assert item_record["domainUrl"] == django_site.url
    assert item_record["routeTemplate"] == "/items/<int:item_id>"
    assert item_record["trafficUserId"] == "user-5"
    assert item_record["queryParams"] == {"x": "1", "secret": "****"}
    assert item_record["requestHeaders"]["authorization"] == "****"
    assert item_record["responseBody"] == {"id": 5, "token": "****"}
    assert item_record["elapsedTime"] > 0
    assert by_path["/login"]["requestBody"] == {"user": "jane", "password": "****"}
    assert by_path["/login"]["status"] == 201
    assert by_path["/form"]["requestBody"] == {"name": "Ann", "password": "****"}
    assert by_path["/crash"]["status"] == 500
    assert by_path["/nowhere"]["status"] == 404
    assert by_path["/nowhere"]["routeTemplate"] is None


def test_django_settings_as_a_dict_build_the_collector(django_site: Site) -> None:
    from django.test import override_settings

    from logharbor.collector.django import LogHarborMiddleware

    def view(request: Any) -> Any:
        return None

    options = {
        "url": "http://127.0.0.1:9",
        "api_key": "lhk_from_settings",
        "max_queue": 7,
        "capture_bodies": True,
        "exclude_paths": ["/internal"],
    }
    with override_settings(LOGHARBOR=options):
        middleware = LogHarborMiddleware(view)
    assert middleware.collector.max_queue == 7
    assert middleware.collector.transport.base_url == "http://127.0.0.1:9"  # type: ignore[attr-defined]
    assert middleware.capture_bodies is True
    assert middleware.exclude_paths == ("/internal",)
    middleware.collector.close()
    # A missing or wrong configuration stops Django at start-up, not at a request.
    with override_settings(LOGHARBOR=None), pytest.raises(RuntimeError, match="LOGHARBOR"):
        LogHarborMiddleware(view)
    with override_settings(LOGHARBOR={"url": "http://x"}), pytest.raises(ValueError):
        LogHarborMiddleware(view)


def test_django_under_asgi(django_site: Site) -> None:
    from django.core.asgi import get_asgi_application

    before = len(django_site.transport.records)
    accepted = django_site.collector.stats().accepted
    with serve_asgi(get_asgi_application()) as served:
        assert httpx.get(f"{served.url}/items/8").json()["id"] == 8
    drain(django_site.collector, accepted + 1)
    (record,) = django_site.transport.records[before:]
    assert (record["pathnameUrl"], record["status"]) == ("/items/8", 200)
    assert record["routeTemplate"] == "/items/<int:item_id>"
    assert record["trafficUserId"] == "user-8"


def test_django_continues_the_trace_and_sends_the_exception_of_a_5xx(django_site: Site) -> None:
    before = len(django_site.transport.records)
    accepted = django_site.collector.stats().accepted
    with httpx.Client(base_url=django_site.url) as client:
        seen = client.get("/trace", headers={"traceparent": INCOMING}).json()
        started = client.get("/trace", headers={"traceparent": INCOMING[:-1]}).json()
        response = client.get("/pay", headers={"traceparent": INCOMING})
        assert response.status_code == 500  # Django's own 500, as before
        assert client.get("/hidden").status_code == 404
    drain(django_site.collector, accepted + 4)
    traced, fresh, pay, hidden = django_site.transport.records[before:]
    # The view saw the request's trace: the one its record carries.
    assert seen == {"traceId": TRACE_ID, "spanId": traced["spanId"]}
    assert traced["traceId"] == TRACE_ID and traced["spanId"] != INCOMING[36:52]
    assert fresh["traceId"] == started["traceId"] != TRACE_ID  # malformed: a trace of its own
    assert (pay["status"], pay["traceId"]) == (500, TRACE_ID)
    assert pay["exception"]["type"] == f"{__name__}.PaymentFailed"
    assert pay["exception"]["message"] == "declined: api_key=****"
    assert pay["exception"]["frames"][-1]["function"] == "pay"
    assert "ak_live_9" not in str(pay)
    # A view's Http404 reaches process_exception too, but is no server error.
    assert hidden["status"] == 404 and "exception" not in hidden
    assert current_trace() is None


def test_django_llm_calls_name_their_request_record_and_route(django_site: Site) -> None:
    collector, transport = django_site.collector, django_site.transport
    before_records, before_spans = len(transport.records), len(transport.spans)
    accepted = collector.stats().accepted
    fake = FakeProvider()
    collector.instrument_openai()
    try:
        with serve_asgi(fake.app()) as provider, httpx.Client(base_url=django_site.url) as http:
            PROVIDER["url"] = provider.url
            answer = http.get("/tickets/7/summary", headers={"traceparent": INCOMING})
            assert answer.status_code == 200 and answer.json() == {"text": REPLY}
            # The record and the call's span.
            drain(collector, accepted + 2)
    finally:
        collector.uninstrument_openai()
    (record,) = transport.records[before_records:]
    (span,) = transport.spans[before_spans:]
    values = {a["key"]: a["value"] for a in span["attributes"]}
    assert record["routeTemplate"] == "/tickets/<int:ticket>/summary"
    assert values["logharbor.record.id"] == {"stringValue": record["id"]}
    assert values["http.route"] == {"stringValue": "/tickets/<int:ticket>/summary"}
    assert span["traceId"] == record["traceId"] == TRACE_ID
    assert span["parentSpanId"] == record["spanId"]
