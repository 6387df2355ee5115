"""The import-linter contracts of `make lint`: the code keeps them, and a planted upward import or
a planted import of another app's private module breaks them. Each check runs `lint-imports` as
`make lint` does, on this tree or on a copy of it with one module added."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
CONFIG = TOOLS["importlinter"]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def copy_of_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The root packages, the contract types and the configuration: what lint-imports reads."""
    copy = tmp_path_factory.mktemp("tree")
    for package in [*CONFIG["root_packages"], "lint"]:
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def plant(tree: Path, module: str, source: str) -> Path:
    path = tree.joinpath(*module.split(".")).with_suffix(".py")
    path.write_text(source)
    return path


def test_it_keeps_the_contracts_on_this_code() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_it_fails_an_upward_import(copy_of_tree: Path) -> None:
    planted = plant(copy_of_tree, "tenants.planted", "from messaging import services\n")
    try:
        result = lint_imports(copy_of_tree)
    finally:
        planted.unlink()
    assert result.returncode == 1
    assert "Apps import only downwards" in result.stdout
    assert "tenants.planted -> messaging.services" in result.stdout


def test_it_fails_an_import_of_another_apps_private_module(copy_of_tree: Path) -> None:
    planted = plant(copy_of_tree, "segments.planted", "from audience import csv_io\n")
    try:
        result = lint_imports(copy_of_tree)
    finally:
        planted.unlink()
    assert result.returncode == 1
    assert "Other apps import only an app's public modules BROKEN" in result.stdout
    assert "segments.planted -> audience.csv_io" in result.stdout


def test_it_lets_an_app_import_another_apps_public_modules(copy_of_tree: Path) -> None:
    planted = plant(
        copy_of_tree,
        "segments.planted",
        "from audience import selectors, services\nfrom audience.models import Contact\n",
    )
    try:
        result = lint_imports(copy_of_tree)
    finally:
        planted.unlink()
    assert result.returncode == 0, result.stdout


def _app_directories() -> set[str]:
    return {path.parent.name for path in ROOT.glob("*/apps.py")}


def test_it_checks_every_app() -> None:
    # An app missing from root_packages is invisible to every contract: add it there (and to the
    # layers, where journeys, campaigns, personalisation and analytics wait already), and to the
    # files mypy checks.
    layers = {
        name.strip(" ()")
        for contract in CONFIG["contracts"]
        if contract["type"] == "layers"
        for layer in contract["layers"]
        for name in layer.split("|")
    }
    assert _app_directories() <= set(CONFIG["root_packages"])
    assert _app_directories() <= layers
    assert {"journeys", "campaigns", "personalisation", "analytics", "core"} <= layers
    assert _app_directories() <= set(TOOLS["mypy"]["files"])
