"""Errors carry their HTTP status; one handler renders them in the caller's API family.

The hierarchy::

    LogHarborError (500)
    ├── BadRequest (400)            invalid input; may carry field_errors
    │   └── MissingToken (400)      no Authorization header (401 in the PromptCrafter family)
    ├── Unauthorized (401)          bad, expired or revoked token
    ├── Forbidden (403)
    ├── NotFound (404)
    ├── Conflict (409)
    ├── PayloadTooLarge (413)
    ├── UnsupportedMediaType (415)
    └── ServiceUnavailable (503)

Two envelopes exist (SPEC.md): Arkyn ``{"name", "message", "fieldErrors"}`` and PromptCrafter
``{"error"}``. Each route declares its family through its route class (``common.routing``); a
PromptCrafter route may also name the exact message for each error kind, since that API documents
a different sentence per endpoint.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LogHarborError(Exception):
    status_code: ClassVar[int] = 500
    name: ClassVar[str] = "ServerError"
    # The key a PromptCrafter route uses to override the message for this kind of error.
    kind: ClassVar[str] = "server"
    default_message: ClassVar[str] = "Server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        field_errors: dict[str, str] | None = None,
        generic: bool | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.field_errors = field_errors or {}
        # Generic errors come from shared machinery (validation, auth, content type); a
        # PromptCrafter route may replace their message with the sentence its docs promise.
        self.generic = message is None if generic is None else generic
        super().__init__(self.message)


class BadRequest(LogHarborError):
    status_code = 400
    name = "BadRequest"
    kind = "invalid"
    default_message = "Invalid input data"


class MissingToken(BadRequest):
    kind = "missing_token"
    default_message = "No token provided"


class Unauthorized(LogHarborError):
    status_code = 401
    name = "Unauthorized"
    kind = "invalid_token"
    default_message = "Invalid token"


class Forbidden(LogHarborError):
    status_code = 403
    name = "Forbidden"
    kind = "forbidden"
    default_message = "Forbidden"


class NotFound(LogHarborError):
    status_code = 404
    name = "NotFound"
    kind = "not_found"
    default_message = "Not found"


class Conflict(LogHarborError):
    status_code = 409
    name = "Conflict"
    kind = "conflict"
    default_message = "Conflict"


class PayloadTooLarge(LogHarborError):
    status_code = 413
    name = "PayloadTooLarge"
    kind = "too_large"
    default_message = "Request body is too large"


class UnsupportedMediaType(LogHarborError):
    status_code = 415
    name = "UnsupportedMediaType"
    kind = "media_type"
    default_message = "Content-Type must be application/json"


class ServiceUnavailable(LogHarborError):
    status_code = 503
    name = "ServiceUnavailable"
    kind = "unavailable"
    default_message = "Service unavailable"


def arkyn_body(error: LogHarborError) -> dict[str, Any]:
    body: dict[str, Any] = {"name": error.name, "message": error.message}
    if error.field_errors:
        body["fieldErrors"] = error.field_errors
    return body


def promptcrafter_status(error: LogHarborError) -> int:
    # PromptCrafter documents 401 for a missing token where Arkyn documents 400.
    return 401 if isinstance(error, MissingToken) else error.status_code


def routeless_body(error: LogHarborError) -> dict[str, Any]:
    """For errors raised before any route matched (unknown path, oversized body): both envelopes."""
    return {**arkyn_body(error), "error": error.message}
