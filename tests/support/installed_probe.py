"""Run by the interpreter of a fresh installation (``tests/test_install.py``), never by the
test process: ``python -I installed_probe.py PACKAGE...`` prints one JSON document on stdout.

It imports every module of the installed packages named on its command line, renders the help
of every command and subcommand of ``pagewright-gateway``, and names the distribution that
provides each module those packages import at run time (imports under ``if TYPE_CHECKING:`` are
for the type checker only and are left out). Only the standard library and the installed
packages are used, so the probe itself needs nothing that a plain ``pip install .`` does not
bring.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata
import importlib.util
import json
import pkgutil
import sys
from pathlib import Path
from typing import Any

#: Alembic executes this script inside its own migration context; importing it outside one
#: fails by design. The gateway's first start runs it for real (tests/test_install.py).
NOT_IMPORTABLE = frozenset({"policy.migrations.env"})


def module_names(packages: list[str]) -> list[str]:
    """Every module and package of the installed ``packages``, walked with pkgutil."""
    names: list[str] = []
    for package in packages:
        root = importlib.import_module(package)
        names.append(package)
        names.extend(info.name for info in pkgutil.walk_packages(root.__path__, f"{package}."))
    return names


def import_all(names: list[str]) -> dict[str, str]:
    """Module name -> the file it was imported from."""
    files: dict[str, str] = {}
    for name in names:
        if name in NOT_IMPORTABLE:
            spec = importlib.util.find_spec(name)
            files[name] = str(spec.origin if spec else "")
            continue
        module = importlib.import_module(name)
        files[name] = str(module.__file__)
    return files


def _is_type_checking_block(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(source: str) -> set[str]:
    """The absolute module names a module imports, outside ``if TYPE_CHECKING:`` blocks."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking_block(node):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def distribution_files() -> dict[Path, str]:
    """Every installed file -> the name of the distribution that installed it."""
    owners: dict[Path, str] = {}
    for distribution in importlib.metadata.distributions():
        for file in distribution.files or ():
            owners[Path(str(distribution.locate_file(file))).resolve()] = distribution.name
    return owners


def third_party_owners(files: dict[str, str], packages: list[str]) -> dict[str, str]:
    """Each third-party module the packages import -> its distribution ('?' if unknown)."""
    owners = distribution_files()
    result: dict[str, str] = {}
    for path in set(files.values()):
        for name in runtime_imports(Path(path).read_text(encoding="utf-8")):
            top = name.partition(".")[0]
            if top in sys.stdlib_module_names or top in packages or top == "__future__":
                continue
            spec = importlib.util.find_spec(name)
            origin = spec.origin if spec is not None else None
            result[name] = owners.get(Path(origin).resolve(), "?") if origin else "?"
    return result


def command_helps() -> dict[str, str]:
    """``pagewright-gateway [command [subcommand]]`` -> its rendered ``--help`` text."""
    from commands import cli

    helps: dict[str, str] = {}

    def walk(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        helps[" ".join(words)] = parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, (*words, name))

    walk(cli._parser(), ("pagewright-gateway",))
    return helps


def main() -> None:
    packages = sys.argv[1:]
    files = import_all(module_names(packages))
    report: dict[str, Any] = {
        "prefix": sys.prefix,
        "modules": files,
        "imports": third_party_owners(files, packages),
        "helps": command_helps(),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
