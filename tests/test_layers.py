"""The layers are real: every import between the project's packages runs one way.

``commands`` -> ``gateway`` -> ``policy`` -> ``translators`` -> ``core``: a package may import
itself and any package after it, never one before it. Imports are read from the source with
``ast`` (including those inside functions and under ``TYPE_CHECKING``), so a wrong-way import
fails here even when nothing executes it. There is no list of exceptions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.project import PACKAGES, ROOT

#: Highest first. A package may import only itself and the packages after it.
LAYERS = ("commands", "gateway", "policy", "translators", "core")


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import statement in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def wrong_way_imports(package: str) -> list[str]:
    """``path:line imports module`` for each import of a package above ``package``."""
    allowed = set(LAYERS[LAYERS.index(package) :])
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, module in imported_modules(tree):
            top = module.partition(".")[0]
            if top in LAYERS and top not in allowed:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


def test_every_installed_package_has_a_layer() -> None:
    assert set(PACKAGES) <= set(LAYERS), set(PACKAGES) - set(LAYERS)


@pytest.mark.parametrize("package", [p for p in LAYERS if (ROOT / p).is_dir()])
def test_imports_run_one_way(package: str) -> None:
    assert wrong_way_imports(package) == []


def test_the_check_sees_a_wrong_way_import(tmp_path: Path) -> None:
    tree = ast.parse("def f():\n    from gateway.app import x\nimport policy.stack\n")
    assert sorted(module for _, module in imported_modules(tree)) == [
        "gateway.app",
        "policy.stack",
    ]


def test_the_dockerfile_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in PACKAGES:
        assert f"COPY {package} {package}" in dockerfile, package
