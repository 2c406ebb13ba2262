"""Facts about the project's source tree that several tests need, read from pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
_PYPROJECT: Final = tomllib.loads((ROOT / "pyproject.toml").read_text())

#: The top-level packages an installation holds (``[tool.setuptools.packages.find] include``).
PACKAGES: Final[tuple[str, ...]] = tuple(
    sorted(
        pattern.rstrip("*")
        for pattern in _PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    )
)
