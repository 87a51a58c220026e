"""Helpers shared by the prompt-API tests (plain functions)."""

from __future__ import annotations

from typing import Any

PROMPT_KEYS = ["_id", "ownerId", "title", "content", "model", "tags", "createdAt", "updatedAt"]
LOG_KEYS = ["_id", "promptId", "output", "notes", "modelUsed", "score", "createdAt"]

TOKEN_MISSING = "Authentication token is missing."
TOKEN_INVALID = "Authentication token is expired or invalid."
MEDIA_TYPE = "Content-Type must be application/json"
FIELDS_INVALID = "Required fields are missing or invalid."
PARAMS_INVALID = "The request is malformed or contains invalid parameters."
NO_PROMPT = "No prompt found with the specified ID."
BAD_TOKEN = {"Authorization": "Bearer not-a-valid-token"}


def assert_error(response: Any, status: int, message: str) -> None:
    """The PromptCrafter envelope: exactly ``{"error": message}`` with the status."""
    assert (response.status_code, response.json()) == (status, {"error": message}), response.text


def raw_json(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """Request kwargs for a hand-written (possibly broken) JSON body."""
    return {"content": body, "headers": {**headers, "Content-Type": "application/json"}}
