"""Flask: ``instrument(app, collector)`` records every request with its route template.

Flask turns a view's exception into a 500 itself, so the WSGI middleware never sees it raised;
``instrument`` hands it over through Flask's ``got_request_exception`` signal instead, and the
record carries it (type, message, traceback) as for any WSGI app that raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from logharbor.collector.collector import Collector
from logharbor.collector.wsgi import (
    EXCEPTION_KEY,
    ROUTE_KEY,
    USER_KEY,
    LogHarborWSGIMiddleware,
)


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
    from flask import got_request_exception, request

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

    def note_exception(sender: Any, exception: BaseException, **extra: Any) -> None:
        # Never break Flask's own error handling.
        with contextlib.suppress(Exception):
            request.environ[EXCEPTION_KEY] = exception

    # First in line, so that a before_request hook that answers early still has the route.
    app.before_request_funcs.setdefault(None, []).insert(0, note_route)
    app.after_request(note_user)
    # weak=False: the handler is a closure that nothing else holds.
    got_request_exception.connect(note_exception, app, weak=False)
    middleware = LogHarborWSGIMiddleware(app.wsgi_app, collector, **options)
    app.wsgi_app = middleware
    return middleware
