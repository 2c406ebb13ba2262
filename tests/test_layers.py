"""The layers are real: every import between the project's packages runs one way.

``commands`` -> ``gateway`` -> ``policy`` -> ``translators`` -> ``core``: a package may import
itself and any package after it, never one before it. Imports are read from the source with
``ast`` (including those inside functions and under ``TYPE_CHECKING``), so a wrong-way import
fails here even when nothing executes it. There is no list of exceptions.

``python -m tests.test_layers [CHECKOUT]`` prints how many import statements each package has
of each other package, for this checkout or another one (an older commit, say).
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
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


def import_counts(root: Path) -> Counter[tuple[str, str]]:
    """(package, package it imports) -> number of import statements, between the top-level
    packages of the checkout at ``root`` (folders with an ``__init__.py``, tests aside)."""
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").is_file()} - {"tests"}
    counts: Counter[tuple[str, str]] = Counter()
    for package in sorted(packages):
        for path in (root / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for _, module in imported_modules(tree):
                top = module.partition(".")[0]
                if top in packages and top != package:
                    counts[package, top] += 1
    return counts


def test_import_counts(tmp_path: Path) -> None:
    for package, text in {
        "low": "import os\n",
        "high": "from low import x\nimport low.y\n",
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(text)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("import high\n")
    assert import_counts(tmp_path) == Counter({("high", "low"): 2})


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


if __name__ == "__main__":
    checkout = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT
    for (source, target), count in sorted(import_counts(checkout).items()):
        print(f"{source:12} -> {target:12} {count}")
