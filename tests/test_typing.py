"""The package type-checks: CI runs only pytest, so mypy has to run from here to keep src typed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_mypy_passes_on_src() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "src"],  # strict, as [tool.mypy] in pyproject.toml says
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"mypy src failed:\n{result.stdout}{result.stderr}"
