"""The request the app is serving right now, as the collector's middleware sees it.

Besides its trace (``logharbor.collector.tracing``), code running while a request is served
may want to name the request's traffic record: an LLM call made in a handler is sent with the
record's client id and route template, so that LogHarbor links the two without a lookup. The
record id is made only when something asks for it (most requests make no LLM call), and the
middleware then sends the record under that id. The route is read when asked, because the
framework matches it after the middleware has started (Starlette puts it into the scope,
Flask's hook into the environ).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextvars import ContextVar, Token

from logharbor.collector.records import new_record_id


class CurrentRequest:
    """One served request: its traffic record's id (made on demand) and its route template."""

    __slots__ = ("_record_id", "_route_of")

    def __init__(self, route_of: Callable[[], str | None] | None = None) -> None:
        self._record_id: str | None = None
        self._route_of = route_of

    @property
    def record_id(self) -> str:
        """The id the request's traffic record will be sent with."""
        if self._record_id is None:
            self._record_id = new_record_id()
        return self._record_id

    @property
    def known_record_id(self) -> str | None:
        """The record id if something asked for it; else None (the record makes its own)."""
        return self._record_id

    def route(self) -> str | None:
        """The matched route's template, when the framework has matched one by now."""
        if self._route_of is None:
            return None
        try:
            return self._route_of()
        except Exception:
            return None


_current: ContextVar[CurrentRequest | None] = ContextVar("logharbor_request", default=None)


# The request being served in this context (task or thread), or None outside one. The
# ContextVar's own getter: an LLM call asks on the app's path, and a Python function around it
# was a frame more to run there.
current_request: Callable[[], CurrentRequest | None] = _current.get


def enter(request: CurrentRequest) -> Token[CurrentRequest | None]:
    return _current.set(request)


def leave(token: Token[CurrentRequest | None]) -> None:
    # Reset from another context or twice: nothing of this request's is left to undo here.
    with contextlib.suppress(ValueError, RuntimeError):
        _current.reset(token)
