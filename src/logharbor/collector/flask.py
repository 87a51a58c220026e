"""Flask: ``instrument(app, collector)`` records every request with its route template."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from logharbor.collector.collector import Collector
from logharbor.collector.wsgi import ROUTE_KEY, USER_KEY, LogHarborWSGIMiddleware


def instrument(
    app: Any,
    collector: Collector,
    *,
    user_id: Callable[[Any], str | None] | None = None,
    **options: Any,
) -> LogHarborWSGIMiddleware:
    """Wrap ``app.wsgi_app`` and note each request's ``url_rule`` (``/users/<int:user_id>``).

    ``user_id(request)`` is called inside the request context, after the view (so ``g`` and
    Flask-Login's ``current_user`` are set). Other options go to ``LogHarborWSGIMiddleware``.
    """
    from flask import request

    def note_route() -> None:
        rule = request.url_rule
        if rule is not None:
            request.environ[ROUTE_KEY] = rule.rule

    def note_user(response: Any) -> Any:
        if user_id is not None:
            try:
                value = user_id(request)
            except Exception:
                value = None
            if value is not None:
                request.environ[USER_KEY] = str(value)
        return response

    # First in line, so that a before_request hook that answers early still has the route.
    app.before_request_funcs.setdefault(None, []).insert(0, note_route)
    app.after_request(note_user)
    middleware = LogHarborWSGIMiddleware(app.wsgi_app, collector, **options)
    app.wsgi_app = middleware
    return middleware
