"""What UI tests share besides fixtures (importable as ``ui.harness``)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from logharbor.settings import Settings


@dataclass
class LiveServer:
    url: str
    settings: Settings

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)
