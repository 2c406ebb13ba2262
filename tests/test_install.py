"""The gateway as users install it: a plain ``pip install .`` (no extras, not editable) into
a fresh virtual environment, as ``scripts/serve`` and the Dockerfile do.

Nothing from the test environment leaks into that installation: it has its own interpreter
and site-packages, runs without ``PYTHONPATH`` and outside the checkout, so a module that
imports a test-only package (or one the packaging leaves out) fails here. The environment is
built once per test session (shared by the xdist workers under a lock), from pip's default
cache, which ``scripts/test`` has already filled.
"""

from __future__ import annotations

import fcntl
import gzip
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support.project import PACKAGES, ROOT
from tests.support.servers import free_port, wait_http

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server

#: What an installation is built from (the Dockerfile copies the same).
SOURCE = ("pyproject.toml", "README.md", *PACKAGES)
PROBE = ROOT / "tests" / "support" / "installed_probe.py"


@dataclass(frozen=True)
class Installation:
    """A fresh virtual environment holding only ``pip install .``."""

    venv: Path

    def tool(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    @property
    def site_packages(self) -> Path:
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        return self.venv / "lib" / version / "site-packages"


def user_environment() -> dict[str, str]:
    """The process environment without the gateway's settings or a Python path."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith("PWG_") and k not in drop}


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_checked(command: list[str], cwd: Path) -> None:
    done = subprocess.run(
        command, cwd=cwd, env=user_environment(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {done.returncode}:\n{done.stderr[-4000:]}")


def _install(root: Path) -> None:
    source = root / "source"
    source.mkdir()
    for name in SOURCE:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    venv = root / "venv"
    _run_checked([sys.executable, "-m", "venv", str(venv)], root)
    _run_checked(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", str(source)],
        root,
    )


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Installation:
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent  # the directory every xdist worker of this session shares
    root = shared / "plain-install"
    with _locked(shared / "plain-install.lock"):
        if not (root / "installed").exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            _install(root)
            (root / "installed").touch()
    return Installation(root / "venv")


@pytest.fixture(scope="session")
def probe(installed: Installation, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What ``tests/support/installed_probe.py`` reports when run by the installation's Python."""
    done = subprocess.run(
        [installed.tool("python"), "-I", str(PROBE), *PACKAGES],
        cwd=tmp_path_factory.mktemp("probe"),
        env=user_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set()
    for requirement in project["dependencies"]:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        assert match is not None, requirement
        names.add(_normalized(match.group()))
    return names


def _source_modules() -> set[str]:
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_version_and_help_of_the_installed_command(installed: Installation) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    command = installed.tool("pagewright-gateway")
    done = subprocess.run(
        [command, "--version"], env=user_environment(), capture_output=True, text=True
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"pagewright-gateway {version}\n", "")
    done = subprocess.run(
        [command, "artifacts", "list", "--help"],
        env=user_environment(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: pagewright-gateway artifacts list" in done.stdout


def test_every_module_imports_from_the_installation(
    installed: Installation, probe: dict[str, Any]
) -> None:
    modules: dict[str, str] = probe["modules"]
    assert set(modules) == _source_modules()
    site_packages = installed.site_packages.resolve()
    for name, path in modules.items():
        assert Path(path).resolve().is_relative_to(site_packages), f"{name} came from {path}"


def test_runtime_imports_come_from_declared_dependencies(probe: dict[str, Any]) -> None:
    imports: dict[str, str] = probe["imports"]
    assert "starlette.applications" in imports or "starlette" in imports
    declared = _declared_dependencies()
    undeclared = {m: d for m, d in imports.items() if _normalized(d) not in declared}
    assert undeclared == {}, "imported at run time but not in [project] dependencies"


def test_every_command_renders_its_help(probe: dict[str, Any]) -> None:
    helps: dict[str, str] = probe["helps"]
    for command in ("serve", "migrate", "reindex", "verify", "api-key create", "artifacts list"):
        assert f"pagewright-gateway {command}" in helps
    for command, text in helps.items():
        assert text.startswith(f"usage: {command}"), text


def _artifact() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        page = b"<html>hello</html>\n"
        member = tarfile.TarInfo("index.html")
        member.size = len(page)
        archive.addfile(member, io.BytesIO(page))
    return gzip.compress(buffer.getvalue(), mtime=0)


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    """Poll ``url`` until it answers 200 (readyz answers 503 until the storage is up)."""
    wait_http(url, process)
    for _ in range(400):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.HTTPError, OSError):
            pass
        assert process.poll() is None, "the gateway exited"
        time.sleep(0.05)
    pytest.fail(f"{url} never answered 200")


def test_serve_on_an_empty_data_dir_and_round_trip(installed: Installation, tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    log = tmp_path / "gateway.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                installed.tool("pagewright-gateway"),
                "serve",
                "--data-dir",
                str(data),
                "--address",
                f"127.0.0.1:{port}",
            ],
            cwd=tmp_path,
            env=user_environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{endpoint}/_pagewright/readyz", process)
        credentials = json.loads((data / "root-credentials.json").read_text())
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=credentials["access_key"],
            aws_secret_access_key=credentials["secret_key"],
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        s3.create_bucket(Bucket="first-site")
        s3.put_object(Bucket="first-site", Key="hello.txt", Body=b"hello, world\n")
        got = s3.get_object(Bucket="first-site", Key="hello.txt")["Body"].read()
        assert got == b"hello, world\n"
        artifact = _artifact()
        s3.put_object(Bucket="first-site", Key="builds/1.tar.gz", Body=artifact)
        assert s3.get_object(Bucket="first-site", Key="builds/1.tar.gz")["Body"].read() == artifact

        command = installed.tool("pagewright-gateway")
        key = subprocess.run(
            [command, "api-key", "create", "--data-dir", str(data)],
            cwd=tmp_path,
            env=user_environment(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        listing = subprocess.run(
            [command, "artifacts", "list", "first-site", "--json"],
            cwd=tmp_path,
            env={**user_environment(), "PWG_ENDPOINT": endpoint, "PWG_API_KEY": key},
            capture_output=True,
            text=True,
            check=False,
        )
        assert listing.returncode == 0, listing.stderr
        assert [i["build_id"] for i in json.loads(listing.stdout)["items"]] == ["1"]
        # The Docker image's HEALTHCHECK, from the installed package, as the image sets it.
        healthcheck = subprocess.run(
            [installed.tool("python"), "-I", "-m", "commands.healthcheck"],
            cwd=tmp_path,
            env={**user_environment(), "PWG_ADDRESS": f"0.0.0.0:{port}"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert (healthcheck.returncode, healthcheck.stderr) == (0, "")
    finally:
        process.terminate()
        process.wait()
    # uvicorn shuts down gracefully, then ends with the signal it was stopped by.
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()
