"""Real servers for tests: the gateway itself (a uvicorn subprocess) on a free port.

Every server binds 127.0.0.1 on a port the OS hands out, is polled until it answers, and is
stopped by PID. A component that cannot be found fails the test under ``CI=true``.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ACCESS_KEY = "PWTESTACCESSKEY00001"
SECRET_KEY = "pw-test-secret/key+with=odd~chars"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(
    url: str, process: subprocess.Popen[bytes], attempts: int = 400, cafile: Path | None = None
) -> None:
    """Poll ``url`` until any HTTP status answers; fail if the process exits first."""
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    for _ in range(attempts):
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=1, context=context).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def require_tool(name: str) -> str:
    """The path of a command-line tool from the venv or PATH; missing fails under CI."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if found is None:
        message = f"{name} is not installed (scripts/test installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(directory / "cert.pem", directory / "key.pem")
    files.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@dataclass
class GatewayServer:
    """A running gateway: its endpoint, credentials, data dir and process."""

    endpoint: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    cafile: Path | None = None
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION
    env: dict[str, str] = field(default_factory=dict)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gateway(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, tls: TlsFiles | None = None
) -> GatewayServer:
    """Start ``pagewright-gateway serve`` on a free port with the test credentials (over
    HTTPS when ``tls`` is given)."""
    port = free_port()
    log_path = data_dir.parent / f"gateway-{port}.log"
    environment = {
        **os.environ,
        "PWG_ROOT_ACCESS_KEY": ACCESS_KEY,
        "PWG_ROOT_SECRET_KEY": SECRET_KEY,
        "PWG_LOG_LEVEL": "warning",
        **(env or {}),
    }
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "commands.cli",
                "serve",
                "--data-dir",
                str(data_dir),
                "--address",
                f"127.0.0.1:{port}",
                *args,
                *(["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)] if tls else []),
            ],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        wait_http(f"{endpoint}/_pagewright/healthz", process, cafile=tls.cert if tls else None)
    except RuntimeError:
        process.kill()
        raise RuntimeError(log_path.read_text()) from None
    return GatewayServer(
        endpoint, port, data_dir, process, log_path, tls.cert if tls else None, env=environment
    )


@contextmanager
def running_gateway(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, tls: TlsFiles | None = None
) -> Iterator[GatewayServer]:
    server = start_gateway(data_dir, *args, env=env, tls=tls)
    try:
        yield server
    finally:
        server.stop()
