"""The container health probe (``python -m commands.healthcheck``, the Dockerfile's
HEALTHCHECK) follows the configured listen address, against real gateways."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from commands.healthcheck import probe_url
from gateway.settings import load_settings
from tests.support.gateway import InProcessGateway
from tests.support.project import ROOT
from tests.support.servers import (
    ACCESS_KEY,
    SECRET_KEY,
    free_port,
    make_tls_files,
    running_gateway,
    wait_http,
)


def _environment(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PWG_")}
    return {**env, "PYTHONPATH": str(ROOT), **settings}


def _probe(command: list[str], **settings: str) -> subprocess.CompletedProcess[str]:
    env = _environment(**settings)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


HEALTHCHECK = [sys.executable, "-m", "commands.healthcheck"]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("0.0.0.0", "http://127.0.0.1:9100/_pagewright/healthz"),
        ("[::]", "http://[::1]:9100/_pagewright/healthz"),
        ("127.0.0.2", "http://127.0.0.2:9100/_pagewright/healthz"),
        ("[::1]", "http://[::1]:9100/_pagewright/healthz"),
        ("localhost", "http://localhost:9100/_pagewright/healthz"),
    ],
)
def test_wildcard_addresses_are_probed_on_loopback(host: str, expected: str) -> None:
    assert probe_url(load_settings(environ={"PWG_ADDRESS": f"{host}:9100"})) == expected


def test_the_probe_follows_pwg_address(gateway: InProcessGateway) -> None:
    for address in (f"127.0.0.1:{gateway.port}", f"0.0.0.0:{gateway.port}"):
        done = _probe(HEALTHCHECK, PWG_ADDRESS=address)
        assert (done.returncode, done.stderr) == (0, ""), address
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = taken.getsockname()[1]
        done = _probe(HEALTHCHECK, PWG_ADDRESS=f"0.0.0.0:{port}")
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"pagewright-gateway healthcheck: unhealthy: http://127.0.0.1:{port}/_pagewright/healthz"
    )


@pytest.mark.server
def test_the_probe_speaks_tls_when_the_gateway_does(tmp_path: Path) -> None:
    files = make_tls_files(tmp_path)
    with running_gateway(tmp_path / "data", tls=files) as server:
        tls = {"PWG_TLS_CERT_FILE": str(files.cert), "PWG_TLS_KEY_FILE": str(files.key)}
        done = _probe(HEALTHCHECK, PWG_ADDRESS=f"0.0.0.0:{server.port}", **tls)
        assert (done.returncode, done.stderr) == (0, "")
        plain = _probe(HEALTHCHECK, PWG_ADDRESS=f"0.0.0.0:{server.port}")
        assert plain.returncode == 1


@pytest.fixture
def ipv6_gateway(tmp_path: Path) -> Iterator[int]:
    """A gateway listening on [::1] only; its port."""
    port = free_port()
    log = tmp_path / "gateway.log"
    env = _environment(
        PWG_ROOT_ACCESS_KEY=ACCESS_KEY, PWG_ROOT_SECRET_KEY=SECRET_KEY, PWG_LOG_LEVEL="warning"
    )
    command = [sys.executable, "-m", "commands.cli", "serve", "--data-dir", str(tmp_path / "d")]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "--address", f"[::1]:{port}"], env=env, stdout=out, stderr=out
        )
    try:
        wait_http(f"http://[::1]:{port}/_pagewright/healthz", process)
        yield port
    finally:
        process.terminate()
        process.wait()


def test_an_ipv6_wildcard_is_probed_on_ipv6_loopback(ipv6_gateway: int) -> None:
    done = _probe(HEALTHCHECK, PWG_ADDRESS=f"[::]:{ipv6_gateway}")
    assert (done.returncode, done.stderr) == (0, "")
    assert _probe(HEALTHCHECK, PWG_ADDRESS=f"0.0.0.0:{ipv6_gateway}").returncode == 1


def test_bad_settings_are_reported(tmp_path: Path) -> None:
    done = _probe(HEALTHCHECK, PWG_ADDRESS="nowhere")
    assert done.returncode == 2
    assert done.stderr == ("pagewright-gateway healthcheck: address 'nowhere' is not HOST:PORT\n")


def _dockerfile_healthcheck() -> list[str]:
    """The command of the Dockerfile's HEALTHCHECK instruction, as Docker would run it."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line for line in text.splitlines() if line.startswith("HEALTHCHECK")]
    assert len(lines) == 1, lines
    match = re.fullmatch(r"HEALTHCHECK\s+(?:--\S+\s+)*CMD\s+(.+)", lines[0].strip())
    assert match is not None, lines[0]
    command = match.group(1)
    if command.startswith("["):
        exec_form: list[str] = json.loads(command)
        return exec_form
    return ["/bin/sh", "-c", command]


def test_the_dockerfile_healthcheck_probes_pwg_address(gateway: InProcessGateway) -> None:
    command = _dockerfile_healthcheck()
    # The image sets PWG_ADDRESS=0.0.0.0:9000; here the gateway listens on another port.
    healthy = _probe(command, PWG_ADDRESS=f"0.0.0.0:{gateway.port}")
    assert healthy.returncode == 0, shlex.join(command) + "\n" + healthy.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        unhealthy = _probe(command, PWG_ADDRESS=f"0.0.0.0:{port}")
    assert unhealthy.returncode != 0
