"""Prompt-API fixtures: a user's prompt made through the API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from prompt_support import MakeRow

from helpers import AUser


@pytest.fixture
def make_prompt(client: TestClient) -> MakeRow:
    def make(owner: AUser, **fields: Any) -> dict[str, Any]:
        body = {"title": "Email subject", "content": "Write a subject line", "model": "GPT-4o"}
        body.update(fields)
        response = client.post("/prompts", json=body, headers=owner.headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make


@pytest.fixture
def make_log(client: TestClient) -> MakeRow:
    def make(owner: AUser, prompt_id: str, **fields: Any) -> dict[str, Any]:
        body = {"promptId": prompt_id, "output": "An output", "modelUsed": "Claude"}
        body.update(fields)
        response = client.post("/logs", json=body, headers=owner.headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make
