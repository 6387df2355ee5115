"""The tenancy lint (`python -m lint.tenancy`, run by `make lint`), in the spirit of Zulip's custom
checks: a view or API module may not query a tenant-owned model unless the query names its
tenant.

Tenant-owned models are the model classes with a `tenant` field, read from every app's models.py
(a subclass of one is tenant-owned too). In the view and API modules (`*/views.py`, `*_views.py`,
`*/api.py`) every query that starts at such a model's manager (`Contact.objects...`) must pass
`tenant=` or `tenant_id=` to one of the calls of that chain (`.filter(tenant=...)`,
`.get(tenant=..., pk=...)`, `.create(tenant=...)`). Anything else goes through a selector, which
takes the tenant and holds the gatekeeper. A justified exception carries a comment on the query's
first line or the line above: `# tenancy: ok (<reason>)`.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SKIPPED_DIRS = {".venv", "venv", "node_modules", "migrations", "tests", "bench", "lint", "var"}
TENANT_KEYWORDS = {"tenant", "tenant_id"}
MANAGERS = {"objects", "_default_manager"}
SHORTCUTS = {"get_object_or_404", "get_list_or_404"}  # django.shortcuts: a model's query
EXCEPTION_RE = re.compile(r"#\s*tenancy:\s*ok\b(?P<rest>.*)")
REASON_RE = re.compile(r"^\s*\(\s*\S.*\)")


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _python_files(root: Path, pattern: str) -> Iterator[Path]:
    for path in sorted(root.glob(pattern)):
        if not SKIPPED_DIRS.intersection(path.relative_to(root).parts[:-1]):
            yield path


def tenant_models(root: Path) -> dict[str, set[str]]:
    """The tenant-owned models of every app under `root`: {app: {ModelName, ...}}."""
    classes: dict[str, dict[str, tuple[list[str], bool]]] = {}
    for path in [*_python_files(root, "*/models.py"), *_python_files(root, "*/models/*.py")]:
        app = path.relative_to(root).parts[0]
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.ClassDef):
                bases = [
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                ]
                classes.setdefault(app, {})[node.name] = (bases, _has_tenant_field(node))
    owned: dict[str, set[str]] = {app: set() for app in classes}
    changed = True
    while changed:  # a subclass of a tenant-owned (abstract) model is tenant-owned too
        changed = False
        for app, models in classes.items():
            for name, (bases, has_field) in models.items():
                inherited = any(base in owned[app] for base in bases)
                if (has_field or inherited) and name not in owned[app]:
                    owned[app].add(name)
                    changed = True
    return {app: names for app, names in owned.items() if names}


def _has_tenant_field(node: ast.ClassDef) -> bool:
    for statement in node.body:
        if isinstance(statement, ast.Assign):
            targets = statement.targets
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets = [statement.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "tenant" for t in targets) and isinstance(
            statement.value, ast.Call
        ):
            return True
    return False


def _imported_models(tree: ast.Module, app: str, owned: dict[str, set[str]]) -> dict[str, str]:
    """Local name -> "app.Model" for the tenant-owned models this module imports."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:  # from .models import X: this app's models
            source_app = app if (node.module or "").startswith("models") else ""
        else:
            parts = (node.module or "").split(".")
            source_app = parts[0] if len(parts) >= 2 and parts[1] == "models" else ""
        for alias in node.names:
            if alias.name in owned.get(source_app, set()):
                names[alias.asname or alias.name] = f"{source_app}.{alias.name}"
    return names


def _chain(node: ast.expr) -> tuple[ast.expr, list[ast.Call]]:
    """The root of an attribute/call chain and its calls, innermost first."""
    calls: list[ast.Call] = []
    while True:
        if isinstance(node, ast.Call):
            calls.append(node)
            node = node.func
        elif isinstance(node, ast.Attribute) and not (
            isinstance(node.value, ast.Name) and node.attr in MANAGERS
        ):
            node = node.value
        else:
            return node, calls[::-1]


def _query(root: ast.expr, calls: list[ast.Call], models: dict[str, str]) -> tuple[str, str] | None:
    """The local name of the tenant-owned model a chain queries and how the query reads
    (`Model.objects.filter().order_by()`, `get_object_or_404(Model)`); None for other chains."""
    if (
        isinstance(root, ast.Attribute)
        and root.attr in MANAGERS
        and isinstance(root.value, ast.Name)
        and root.value.id in models
    ):
        return root.value.id, f"{root.value.id}.{root.attr}." + ".".join(
            f"{c.func.attr}()" for c in calls if isinstance(c.func, ast.Attribute)
        )
    name = root.id if isinstance(root, ast.Name) else getattr(root, "attr", None)
    if (
        name in SHORTCUTS
        and calls
        and calls[0].args
        and isinstance(calls[0].args[0], ast.Name)
        and calls[0].args[0].id in models
    ):
        del calls[1:]  # the shortcut's own keywords are the query's
        return calls[0].args[0].id, f"{name}({calls[0].args[0].id})"
    return None


def _exception(lines: list[str], first: int, last: int) -> str | None:
    """'ok' if a justified exception comment covers lines first..last (1-based), 'no reason'
    if one is there without its reason, None if there is none."""
    for number in range(max(first - 1, 1), last + 1):
        match = EXCEPTION_RE.search(lines[number - 1])
        if match:
            return "ok" if REASON_RE.match(match.group("rest")) else "no reason"
    return None


def check_source(source: str, path: Path, app: str, owned: dict[str, set[str]]) -> list[Violation]:
    tree = ast.parse(source, str(path))
    models = _imported_models(tree, app, owned)
    if not models:
        return []
    lines = source.splitlines()
    violations = []
    seen: set[int] = set()  # the outermost call of a chain is reported, not each of its links
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in seen:
            continue
        root, calls = _chain(node)
        seen.update(id(c) for c in calls)
        found = _query(root, calls, models)
        if found is None:
            continue
        local_name, query = found
        if any(k.arg in TENANT_KEYWORDS for call in calls for k in call.keywords):
            continue
        model = models[local_name]
        exception = _exception(lines, node.lineno, node.end_lineno or node.lineno)
        if exception == "ok":
            continue
        if exception == "no reason":
            message = f"{query}: say why in the exception: '# tenancy: ok (<reason>)'"
        else:
            message = (
                f"{query} queries the tenant-owned {model} without tenant=: go through a"
                " tenant-scoped selector, pass tenant= (or tenant_id=) to the query, or mark a"
                " justified exception '# tenancy: ok (<reason>)'"
            )
        violations.append(Violation(path, node.lineno, message))
    return sorted(violations, key=lambda v: v.line)


def checked_modules(root: Path) -> Iterator[Path]:
    """The view and API modules under `root`."""
    seen: set[Path] = set()
    for pattern in ("*/views.py", "*/*_views.py", "*/api.py"):
        for path in _python_files(root, pattern):
            if path not in seen:
                seen.add(path)
                yield path


def check_tree(root: Path, paths: Iterable[Path] | None = None) -> list[Violation]:
    root = root.resolve()
    owned = tenant_models(root)
    violations = []
    for path in paths if paths is not None else checked_modules(root):
        path = path.resolve()
        app = path.relative_to(root).parts[0]
        violations += check_source(path.read_text(), path.relative_to(root), app, owned)
    return violations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lint.tenancy", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the project's directory")
    parser.add_argument("paths", nargs="*", type=Path, help="modules to check (default: all)")
    args = parser.parse_args(argv)
    violations = check_tree(args.root, args.paths or None)
    for violation in violations:
        print(violation)  # noqa: T201 - a command-line tool's report
    if violations:
        print(f"tenancy: {len(violations)} unscoped quer{'y' if len(violations) == 1 else 'ies'}")  # noqa: T201
        return 1
    print(f"tenancy: {sum(1 for _ in checked_modules(args.root.resolve()))} modules clean")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
