"""Polling and file listings for tests that watch a gateway's effects."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def wait_until(condition: Callable[[], bool], attempts: int = 200) -> bool:
    """Poll ``condition`` (bounded); the caller asserts the result."""
    for _ in range(attempts):
        if condition():
            return True
        time.sleep(0.05)
    return condition()
