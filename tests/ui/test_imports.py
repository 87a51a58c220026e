"""The pages call the features' services, never the API's route functions: a route module is a
feature's HTTP surface (its status codes, envelopes, dependencies), not its service layer."""

from __future__ import annotations

import ast
from pathlib import Path

import logharbor.ui

UI = Path(logharbor.ui.__file__).parent


def _is_route_module(dotted: str) -> bool:
    """``logharbor.<feature>.routes`` or ``..._routes`` outside the UI (whose own routes.py is
    its pages)."""
    parts = dotted.split(".")
    return (
        len(parts) >= 3
        and parts[0] == "logharbor"
        and parts[1] != "ui"
        and (parts[-1] == "routes" or parts[-1].endswith("_routes"))
    )


def route_imports(source: str) -> list[str]:
    """Every route module that this module's code imports, or imports something from."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_route_module(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _is_route_module(node.module):
                found.append(node.module)
            found += [
                f"{node.module}.{alias.name}"
                for alias in node.names
                if _is_route_module(f"{node.module}.{alias.name}")
            ]
    return found


def test_the_check_finds_every_way_of_importing_a_route_module() -> None:
    assert route_imports("from logharbor.traffic import source_routes") == [
        "logharbor.traffic.source_routes"
    ]
    assert route_imports("from logharbor.prompts.routes import _own_prompt") == [
        "logharbor.prompts.routes"
    ]
    assert route_imports("import logharbor.stats.routes as r") == ["logharbor.stats.routes"]
    assert route_imports("def f():\n    from logharbor.auth import routes\n") == [
        "logharbor.auth.routes"
    ]
    assert (
        route_imports("from logharbor.ui import routes\nfrom logharbor.stats import services") == []
    )


def test_no_page_imports_a_route_module() -> None:
    modules = sorted(UI.glob("*.py"))
    assert len(modules) > 5, UI
    offenders = {
        path.name: found
        for path in modules
        if (found := route_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
