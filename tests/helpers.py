"""Small helpers shared by tests (plain functions, no framework)."""

from __future__ import annotations

from dataclasses import dataclass


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class AUser:
    id: str
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)
