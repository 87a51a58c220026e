"""Route templates end to end: real framework apps with the collector's middleware send their
traffic to a real LogHarbor server (started by the test, on SQLite and PostgreSQL), whose
statistics then count the records under their routes.

Each app has a parametrized route; requests to several ids must come back as records that keep
their concrete pathnames, answer the route in the framework's own syntax, and make one
``groupBy=pathname`` group whose ``pathnameId`` lists exactly those records.
"""

from __future__ import annotations

import sys
import types
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from flask import Blueprint, Flask, jsonify
from litestar import Litestar, Router, asgi, get
from litestar.middleware import DefineMiddleware
from litestar.params import FromPath
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from collector.harness import LogHarbor, Served, drain, running_logharbor, serve_asgi, serve_wsgi
from logharbor.collector import Collector, LogHarborASGIMiddleware
from logharbor.collector.flask import instrument

ORDER_IDS = (3, 14, 15, 92, 65)
DJANGO_URLCONF = "logharbor_route_templates_e2e_urls"


@pytest.fixture
def logharbor(database_url: str, tmp_path: Path) -> Iterator[LogHarbor]:
    with running_logharbor(database_url, tmp_path / "data") as server:
        yield server


@pytest.fixture
def collector(logharbor: LogHarbor) -> Iterator[Collector]:
    sender = Collector(logharbor.url, api_key=logharbor.ingest_key, flush_interval=0.05)
    yield sender
    sender.close()


# --- the apps ---------------------------------------------------------------------------------


def fastapi_app(collector: Collector) -> FastAPI:
    app = FastAPI()

    @app.get("/orders/{order_id}")
    def order(order_id: int) -> dict[str, int]:
        return {"id": order_id}

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    app.add_middleware(LogHarborASGIMiddleware, collector=collector)
    return app


async def _starlette_order(request: Any) -> JSONResponse:
    return JSONResponse({"id": int(request.path_params["order_id"])})


async def _starlette_health(request: Any) -> JSONResponse:
    return JSONResponse({"ok": True})


def starlette_app(collector: Collector) -> Any:
    app = Starlette(
        routes=[
            Route("/orders/{order_id:int}", _starlette_order),
            Route("/health", _starlette_health),
        ]
    )
    return LogHarborASGIMiddleware(app, collector)


@get("/orders/{order_id:int}")
async def _litestar_order(order_id: FromPath[int]) -> dict[str, int]:
    return {"id": order_id}


@get("/health")
async def _litestar_health() -> dict[str, bool]:
    return {"ok": True}


def litestar_app(collector: Collector) -> Litestar:
    return Litestar(
        route_handlers=[_litestar_order, _litestar_health],
        middleware=[DefineMiddleware(LogHarborASGIMiddleware, collector=collector)],
    )


def flask_app(collector: Collector) -> Flask:
    app = Flask("orders")

    @app.get("/orders/<int:order_id>")
    def order(order_id: int) -> Any:
        return jsonify(id=order_id)

    @app.get("/health")
    def health() -> Any:
        return jsonify(ok=True)

    instrument(app, collector)
    return app


def _django_urlconf() -> types.ModuleType:
    from django.http import JsonResponse
    from django.urls import include, path, re_path

    def order(request: Any, **ids: Any) -> JsonResponse:
        (value,) = ids.values()
        return JsonResponse({"id": int(value)})

    def health(request: Any) -> JsonResponse:
        return JsonResponse({"ok": True})

    api = [
        path("customers/<int:customer_id>", order),
        re_path(r"^legacy/(?P<order_id>[0-9]+)/$", order),
    ]
    module = types.ModuleType(DJANGO_URLCONF)
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("orders/<int:order_id>", order),
        path("health", health),
        path("api/", include(api)),
    ]
    return module


@pytest.fixture(scope="module")
def django_site() -> Iterator[None]:
    """Django is configured once per process, and tests/collector/test_django.py may have done it
    (or do it after this module): this module lays its own settings over whatever is there and
    leaves Django as it found it."""
    import django
    from django.conf import settings
    from django.test import override_settings
    from django.utils.functional import empty

    ours: dict[str, Any] = {
        "DEBUG": False,
        "ALLOWED_HOSTS": ["127.0.0.1"],
        "ROOT_URLCONF": DJANGO_URLCONF,
        "MIDDLEWARE": ["logharbor.collector.django.LogHarborMiddleware"],
    }
    configured_here = not settings.configured
    if configured_here:
        settings.configure(
            SECRET_KEY="django-route-e2e-secret", INSTALLED_APPS=[], LOGGING_CONFIG=None, **ours
        )
        django.setup()
    sys.modules[DJANGO_URLCONF] = _django_urlconf()
    try:
        with override_settings(**ours):
            yield
    finally:
        del sys.modules[DJANGO_URLCONF]
        if configured_here:
            # Unconfigured again, so that a later module's settings.configure() takes effect.
            settings._wrapped = empty


def django_wsgi_app(collector: Collector) -> Any:
    from django.core.wsgi import get_wsgi_application
    from django.test import override_settings

    # The middleware reads LOGHARBOR when the handler is built.
    with override_settings(LOGHARBOR={"collector": collector}):
        return get_wsgi_application()


def django_asgi_app(collector: Collector) -> Any:
    from django.core.asgi import get_asgi_application
    from django.test import override_settings

    with override_settings(LOGHARBOR={"collector": collector}):
        return get_asgi_application()


@dataclass(frozen=True)
class Framework:
    build: Callable[[Collector], Any]
    serve: Callable[[Any], Served]
    route: str  # the order route, as the collector should send it


FRAMEWORKS = {
    "fastapi": Framework(fastapi_app, serve_asgi, "/orders/{order_id}"),
    # Starlette's route keeps its convertor; Litestar's ("{order_id:int}") is left out.
    "starlette": Framework(starlette_app, serve_asgi, "/orders/{order_id:int}"),
    "litestar": Framework(litestar_app, serve_asgi, "/orders/{order_id}"),
    "flask": Framework(flask_app, serve_wsgi, "/orders/<int:order_id>"),
    # Django writes "orders/<int:order_id>": the collector adds the leading slash.
    "django-wsgi": Framework(django_wsgi_app, serve_wsgi, "/orders/<int:order_id>"),
    "django-asgi": Framework(django_asgi_app, serve_asgi, "/orders/<int:order_id>"),
}


# --- what LogHarbor answers --------------------------------------------------------------------


def groups_by_pathname(logharbor: LogHarbor, **params: Any) -> dict[str, dict[str, Any]]:
    groups = logharbor.pathname_groups(**params)
    by_pathname = {group["pathname"]: group for group in groups}
    assert len(by_pathname) == len(groups), groups
    return by_pathname


def records_under(logharbor: LogHarbor, group: dict[str, Any]) -> list[str]:
    """The concrete pathnames of the records that a stats group's pathnameId lists."""
    return sorted(r["pathname"] for r in logharbor.records(pathnameId=group["pathnameId"]))


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_a_framework_route_is_one_statistics_group(
    name: str, logharbor: LogHarbor, collector: Collector, request: pytest.FixtureRequest
) -> None:
    framework = FRAMEWORKS[name]
    if name.startswith("django"):
        request.getfixturevalue("django_site")
    with (
        framework.serve(framework.build(collector)) as served,
        httpx.Client(base_url=served.url) as client,
    ):
        for order_id in ORDER_IDS:
            assert client.get(f"/orders/{order_id}").json() == {"id": order_id}
        assert client.get("/health").status_code == 200
        drain(collector, len(ORDER_IDS) + 1)
    stats = collector.stats()
    assert (stats.sent, stats.rejected, stats.failed) == (len(ORDER_IDS) + 1, 0, 0)

    records = logharbor.records()
    orders = sorted(f"/orders/{order_id}" for order_id in ORDER_IDS)
    assert sorted(r["pathname"] for r in records) == sorted([*orders, "/health"])
    assert {r["pathname"]: r["routeTemplate"] for r in records} == {
        **dict.fromkeys(orders, framework.route),
        "/health": "/health",
    }
    assert {r["domain"] for r in records} == {served.url}

    groups = groups_by_pathname(logharbor)
    assert {pathname: group["count"] for pathname, group in groups.items()} == {
        framework.route: len(ORDER_IDS),
        "/health": 1,
    }
    assert records_under(logharbor, groups[framework.route]) == orders
    assert records_under(logharbor, groups["/health"]) == ["/health"]


def test_route_as_pathname_stores_the_route_instead_of_the_path(logharbor: LogHarbor) -> None:
    """For Arkyn-style servers: the concrete ids are gone, the records are still one group."""
    collector = Collector(
        logharbor.url, api_key=logharbor.ingest_key, flush_interval=0.05, route_as_pathname=True
    )
    with serve_asgi(fastapi_app(collector)) as served, httpx.Client(base_url=served.url) as client:
        for order_id in ORDER_IDS:
            assert client.get(f"/orders/{order_id}").status_code == 200
        assert client.get("/no/route/here").status_code == 404
        drain(collector, len(ORDER_IDS) + 1)
    assert collector.stats().sent == len(ORDER_IDS) + 1
    collector.close()

    records = logharbor.records()
    assert Counter((r["pathname"], r["routeTemplate"]) for r in records) == {
        ("/orders/{order_id}", "/orders/{order_id}"): len(ORDER_IDS),
        # Without a route the path is all there is.
        ("/no/route/here", None): 1,
    }
    groups = groups_by_pathname(logharbor)
    assert {pathname: group["count"] for pathname, group in groups.items()} == {
        "/orders/{order_id}": len(ORDER_IDS),
        "/no/route/here": 1,
    }
    under = records_under(logharbor, groups["/orders/{order_id}"])
    assert under == ["/orders/{order_id}"] * len(ORDER_IDS)


# --- apps served under a prefix, with included and mounted parts -------------------------------


def _static_dir(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    static.mkdir()
    for name in ("a.txt", "b.txt"):
        (static / name).write_text(name)
    return static


def mounted_fastapi_app(collector: Collector, static: Path) -> FastAPI:
    app = FastAPI()
    customers = APIRouter()

    @customers.get("/customers/{customer_id}")
    def customer(customer_id: int) -> dict[str, int]:
        return {"id": customer_id}

    app.include_router(customers, prefix="/api")
    admin = FastAPI()

    @admin.get("/users/{user_id}")
    def user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    app.mount("/admin", admin)
    app.mount("/static", StaticFiles(directory=static))
    app.add_middleware(LogHarborASGIMiddleware, collector=collector)
    return app


def mounted_starlette_app(collector: Collector, static: Path) -> Any:
    async def customer(request: Any) -> JSONResponse:
        return JSONResponse({"id": request.path_params["customer_id"]})

    app = Starlette(
        routes=[
            Mount("/api", routes=[Route("/customers/{customer_id:int}", customer)]),
            Mount("/static", app=StaticFiles(directory=static)),
        ]
    )
    return LogHarborASGIMiddleware(app, collector)


@get("/customers/{customer_id:int}")
async def _litestar_customer(customer_id: FromPath[int]) -> dict[str, int]:
    return {"id": customer_id}


@asgi("/files", is_mount=True, copy_scope=True)
async def _litestar_files(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("file")(scope, receive, send)


def mounted_litestar_app(collector: Collector) -> Any:
    # Wrapped whole: Litestar runs its own middleware only for a matched route, after it took
    # root_path and a mount's prefix off the path.
    app = Litestar(
        route_handlers=[Router("/api", route_handlers=[_litestar_customer]), _litestar_files]
    )
    return LogHarborASGIMiddleware(app, collector)


def test_asgi_apps_served_under_a_root_path_with_included_and_mounted_routes(
    logharbor: LogHarbor, collector: Collector, tmp_path: Path
) -> None:
    """uvicorn --root-path /shop: the recorded pathnames start with /shop, so do the routes. A
    mounted app that routes nothing itself (static files) has no route: its paths count alone."""
    static = _static_dir(tmp_path)
    apps = {
        "fastapi": mounted_fastapi_app(collector, static),
        "starlette": mounted_starlette_app(collector, static),
        "litestar": mounted_litestar_app(collector),
    }
    paths = {
        "fastapi": ["/api/customers/1", "/api/customers/2", "/admin/users/7", "/admin/users/8"],
        "starlette": ["/api/customers/1", "/api/customers/2"],
        "litestar": ["/api/customers/1", "/api/customers/2"],
    }
    paths["fastapi"] += ["/static/a.txt", "/static/b.txt"]
    paths["starlette"] += ["/static/a.txt", "/static/b.txt"]
    paths["litestar"] += ["/files/a", "/files/b"]
    expected = {
        "fastapi": {
            "/shop/api/customers/{customer_id}": ["/shop/api/customers/1", "/shop/api/customers/2"],
            "/shop/admin/users/{user_id}": ["/shop/admin/users/7", "/shop/admin/users/8"],
        },
        "starlette": {
            "/shop/api/customers/{customer_id:int}": [
                "/shop/api/customers/1",
                "/shop/api/customers/2",
            ]
        },
        "litestar": {
            "/shop/api/customers/{customer_id}": ["/shop/api/customers/1", "/shop/api/customers/2"]
        },
    }
    unrouted = {
        "fastapi": ["/shop/static/a.txt", "/shop/static/b.txt"],
        "starlette": ["/shop/static/a.txt", "/shop/static/b.txt"],
        "litestar": ["/shop/files/a", "/shop/files/b"],
    }
    domains: dict[str, str] = {}
    for name, app in apps.items():
        with (
            serve_asgi(app, root_path="/shop") as served,
            httpx.Client(base_url=served.url) as client,
        ):
            domains[name] = served.url
            for path in paths[name]:
                assert client.get(path).status_code == 200, (name, path)
    drain(collector, sum(len(p) for p in paths.values()))
    assert (collector.stats().rejected, collector.stats().failed) == (0, 0)
    _assert_routes_and_groups(logharbor, domains, expected, unrouted)


def test_wsgi_apps_under_a_script_name_with_blueprints_and_included_urls(
    logharbor: LogHarbor, collector: Collector, django_site: None
) -> None:
    """Apps mounted at /shop of a WSGI dispatcher (SCRIPT_NAME=/shop); Django also under ASGI
    with uvicorn's root_path. Django's include() joins the route, re_path()'s anchors go."""
    flask = Flask("customers")
    blueprint = Blueprint("api", "customers", url_prefix="/api")

    @blueprint.get("/customers/<int:customer_id>")
    def customer(customer_id: int) -> Any:
        return jsonify(id=customer_id)

    flask.register_blueprint(blueprint)
    instrument(flask, collector)
    domains: dict[str, str] = {}
    django_paths = ["/shop/api/customers/1", "/shop/api/customers/2", "/shop/api/legacy/5/"]
    with serve_wsgi(DispatcherMiddleware(Flask("root"), {"/shop": flask})) as served:
        domains["flask"] = served.url
        for n in (1, 2):
            assert httpx.get(f"{served.url}/shop/api/customers/{n}").json() == {"id": n}
    shop = DispatcherMiddleware(Flask("root"), {"/shop": django_wsgi_app(collector)})
    with serve_wsgi(shop) as served:
        domains["django-wsgi"] = served.url
        for path in django_paths:
            assert httpx.get(f"{served.url}{path}").status_code == 200, path
    with serve_asgi(django_asgi_app(collector), root_path="/shop") as served:
        domains["django-asgi"] = served.url
        for path in django_paths:
            assert httpx.get(f"{served.url}{path.removeprefix('/shop')}").status_code == 200
    drain(collector, 2 + 2 * len(django_paths))
    assert (collector.stats().rejected, collector.stats().failed) == (0, 0)
    django_routes = {
        "/shop/api/customers/<int:customer_id>": [
            "/shop/api/customers/1",
            "/shop/api/customers/2",
        ],
        "/shop/api/legacy/(?P<order_id>[0-9]+)/": ["/shop/api/legacy/5/"],
    }
    expected = {
        "flask": {
            "/shop/api/customers/<int:customer_id>": [
                "/shop/api/customers/1",
                "/shop/api/customers/2",
            ]
        },
        "django-wsgi": django_routes,
        "django-asgi": django_routes,
    }
    _assert_routes_and_groups(logharbor, domains, expected, {})


def _assert_routes_and_groups(
    logharbor: LogHarbor,
    domains: dict[str, str],
    expected: dict[str, dict[str, list[str]]],
    unrouted: dict[str, list[str]],
) -> None:
    """Per app (by its domain): each record's route, and one stats group per route."""
    records = logharbor.records()
    domain_ids = {r["domain"]: r["domainId"] for r in records}
    for name, domain in domains.items():
        mine = [r for r in records if r["domain"] == domain]
        routes = expected[name]
        want: dict[str, str | None] = {p: route for route, paths in routes.items() for p in paths}
        want.update(dict.fromkeys(unrouted.get(name, []), None))
        assert sorted(r["pathname"] for r in mine) == sorted(want), name
        assert {r["pathname"]: r["routeTemplate"] for r in mine} == want, name

        groups = groups_by_pathname(logharbor, domainId=domain_ids[domain])
        counts = {route: len(paths) for route, paths in routes.items()}
        counts.update(dict.fromkeys(unrouted.get(name, []), 1))
        assert {pathname: group["count"] for pathname, group in groups.items()} == counts, name
        for route, paths in routes.items():
            assert records_under(logharbor, groups[route]) == sorted(paths), (name, route)
