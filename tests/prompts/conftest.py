"""Prompt-API fixtures: a user's prompt made through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers import AUser

MakePrompt = Callable[..., dict[str, Any]]


@pytest.fixture
def make_prompt(client: TestClient) -> MakePrompt:
    def make(owner: AUser, **fields: Any) -> dict[str, Any]:
        body = {"title": "Email subject", "content": "Write a subject line", "model": "GPT-4o"}
        body.update(fields)
        response = client.post("/prompts", json=body, headers=owner.headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make
