"""LLM-call tests post OTLP the way the ingest tests do, and use the traffic tests' factories."""

from __future__ import annotations

import sys
from pathlib import Path

for folder in ("traffic", "ingest"):
    sys.path.insert(0, str(Path(__file__).parent.parent / folder))
