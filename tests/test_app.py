"""The worker factory keeps the garbage collector's pauses off the request path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_worker_processes_freeze_the_app_and_collect_young_objects_less_often(
    tmp_path: Path,
) -> None:
    # In a process of its own: freezing is for a serving worker, not for this test session.
    probe = (
        "import gc, json\n"
        "before = gc.get_freeze_count()\n"
        "from logharbor.app import create_app_from_env\n"
        "create_app_from_env()\n"
        "print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold()[0]]))\n"
    )
    env = {**os.environ, "LOGHARBOR_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    before, after, threshold = json.loads(done.stdout.strip().splitlines()[-1])
    assert before == 0 and after > 10_000  # the app's long-lived objects are frozen
    assert threshold == 20_000
