"""No dead code in src/: vulture finds what nothing uses (tests count as users)."""

from __future__ import annotations

from pathlib import Path

import vulture

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "logharbor"
# Names the frameworks call by decoration: routes, CLI commands, validators, event listeners.
IGNORE_DECORATORS = [
    "@*router.*",
    "@arkyn.*",
    "@promptcrafter.*",
    "@also_at",
    "@*app.command",
    "@field_validator",
    "@model_validator",
    "@event.listens_for",
]
# SQLAlchemy's TypeDecorator and pydantic's settings hooks.
IGNORE_NAMES = ["impl", "cache_ok", "process_bind_param", "process_result_value", "model_config"]


def _wire_field(item: vulture.core.Item) -> bool:
    # An API schema's fields are read by the JSON encoder and by clients, not by our code.
    return item.typ == "variable" and Path(item.filename).name == "schemas.py"


def test_src_has_no_dead_code() -> None:
    finder = vulture.Vulture(ignore_names=IGNORE_NAMES, ignore_decorators=IGNORE_DECORATORS)
    finder.scavenge(
        [str(SRC), str(ROOT / "tests")],
        exclude=[str(SRC / "db" / "migrations" / "versions")],  # alembic reads their globals
    )
    unused = [
        item.get_report(add_size=False)
        for item in finder.get_unused_code(min_confidence=60)
        if Path(item.filename).is_relative_to(SRC) and not _wire_field(item)
    ]
    assert unused == [], "\n".join(unused)
