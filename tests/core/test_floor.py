"""The floor imports no Wayfarer app, so every app can import it without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings

CORE = Path(__file__).resolve().parents[2] / "core"


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_it_imports_no_other_wayfarer_app() -> None:
    project_apps = {
        app.split(".")[0]
        for app in settings.INSTALLED_APPS
        if (CORE.parent / app.split(".")[0]).is_dir() and app.split(".")[0] != "core"
    } | {"config"}
    assert {"accounts", "tenants", "audience", "segments", "messaging", "ops"} <= project_apps
    for path in sorted(CORE.rglob("*.py")):
        upward = {m for m in _imported_modules(path) if m.split(".")[0] in project_apps}
        assert not upward, f"{path.name} imports {sorted(upward)}"


def test_it_sits_first_among_the_wayfarer_apps() -> None:
    ours = [a for a in settings.INSTALLED_APPS if (CORE.parent / a.split(".")[0]).is_dir()]
    assert ours[0] == "core"
