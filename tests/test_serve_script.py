"""``scripts/serve``, the README's one install-and-start command, run for real on a copy of
the project: it installs only when it must, and recovers a broken ``.venv``.

One test, because each install is real (pip, from pip's default cache that
``scripts/test`` filled): the first start repairs a ``.venv`` whose interpreter is gone, the
second installs nothing, a changed ``pyproject.toml`` reinstalls, and so does a dependency
that went missing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.project import PACKAGES, ROOT
from tests.support.servers import free_port

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server

COPIED = ("pyproject.toml", "README.md", "scripts", *PACKAGES)


def _environment() -> dict[str, str]:
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith("PWG_") and k not in drop}


def _copy_project(target: Path) -> Path:
    target.mkdir()
    for name in COPIED:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, target / name)
    return target


def _serve(project: Path, data: Path) -> str:
    """Run ``scripts/serve`` until the gateway answers healthz, then stop it; its stderr."""
    port = free_port()
    log = data.parent / f"serve-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["scripts/serve", "--data-dir", str(data), "--address", f"127.0.0.1:{port}"],
            cwd=project,
            env=_environment(),
            stdout=out,
            stderr=out,
        )
    try:
        # An install may take minutes: poll while the script (then the gateway) runs.
        for _ in range(6000):
            if process.poll() is not None:
                pytest.fail(f"scripts/serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                url = f"http://127.0.0.1:{port}/_pagewright/healthz"
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert response.read() == b"ok\n"
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        else:
            pytest.fail(f"the gateway never answered:\n{log.read_text()}")
    finally:
        process.terminate()
        process.wait()
    return log.read_text()


def _installed_script(project: Path) -> tuple[int, int]:
    """Identity of the console script pip writes on every install: (inode, mtime)."""
    status = (project / ".venv" / "bin" / "pagewright-gateway").stat()
    return status.st_ino, status.st_mtime_ns


def _stamp(project: Path) -> str:
    return (project / ".venv" / ".pagewright-installed").read_text().strip()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_serve_installs_only_when_needed_and_recovers(tmp_path: Path) -> None:
    project = _copy_project(tmp_path / "project")
    data = tmp_path / "data"
    # A .venv whose interpreter is gone (Python was upgraded or removed under it).
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "python").symlink_to(tmp_path / "no-such-python")

    _serve(project, data)
    assert (data / "root-credentials.json").is_file()
    first = _installed_script(project)

    log = _serve(project, data)
    assert _installed_script(project) == first, "the second start reinstalled"
    assert "scripts/serve:" not in log
    assert _stamp(project) == _sha256(project / "pyproject.toml")

    with open(project / "pyproject.toml", "a") as pyproject:
        pyproject.write("\n# a changed pyproject.toml\n")
    log = _serve(project, data)
    assert "pyproject.toml changed" in log
    assert _installed_script(project) != first
    assert _stamp(project) == _sha256(project / "pyproject.toml")
    second = _installed_script(project)

    pip = [str(project / ".venv" / "bin" / "python"), "-m", "pip", "uninstall", "-q", "-y"]
    subprocess.run([*pip, "rich"], env=_environment(), check=True, capture_output=True)
    _serve(project, data)
    assert _installed_script(project) != second
    check = [str(project / ".venv" / "bin" / "python"), "-c", "import rich"]
    assert subprocess.run(check, env=_environment(), check=False).returncode == 0
