"""Zero-configuration start: generated credentials are printed once and never logged."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from commands.cli import _parser, main
from tests.support.artifact_api import create_api_key, upload
from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway
from tests.support.project import ROOT
from tests.support.servers import GatewayServer, free_port, running_gateway, wait_http


def _start(cwd: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PWG_")}
    return subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "serve", "--address", f"127.0.0.1:{port}"],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _run_once(cwd: Path) -> tuple[str, str]:
    port = free_port()
    process = _start(cwd, port)
    try:
        wait_http(f"http://127.0.0.1:{port}/_pagewright/healthz", process)
        credentials = json.loads((cwd / "data" / "root-credentials.json").read_text())
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id=credentials["access_key"],
            aws_secret_access_key=credentials["secret_key"],
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        s3.create_bucket(Bucket=f"zero-config-{int(time.time() * 1000)}")
        assert s3.list_buckets()["Buckets"]
    finally:
        process.terminate()
        out, err = process.communicate()
    return out.decode(), err.decode()


@pytest.mark.server
def test_zero_config_start(tmp_path: Path) -> None:
    first_out, first_err = _run_once(tmp_path)
    secret = json.loads((tmp_path / "data" / "root-credentials.json").read_text())["secret_key"]
    assert secret in first_out
    assert secret not in first_err
    assert (tmp_path / "data" / "storage").is_dir()
    second_out, second_err = _run_once(tmp_path)
    assert secret not in second_out
    assert secret not in second_err
    for line in first_err.splitlines() + second_err.splitlines():
        json.loads(line)  # every log line is structured JSON


def test_bad_configuration_fails_clearly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "commands.cli", "serve", "--address", "nowhere"],
        cwd=tmp_path,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 2
    assert b"HOST:PORT" in result.stderr


def test_unknown_backend_scheme(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "commands.cli", "serve", "--backend", "ftp://somewhere"],
        cwd=tmp_path,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 2
    assert b"unknown scheme" in result.stderr


def test_probes(process_gateway: GatewayServer) -> None:
    gateway = process_gateway
    for path in ("/healthz", "/_pagewright/healthz"):
        with urllib.request.urlopen(gateway.endpoint + path) as response:
            assert response.read() == b"ok\n"
    with urllib.request.urlopen(gateway.endpoint + "/readyz") as response:
        report = json.loads(response.read())
    assert (report["ready"], report["backend"], report["failed"]) == (True, "filesystem", [])
    assert set(report["checks"]) == {"backend", "catalog", "free_space"}


def test_signed_healthz_is_a_bucket(s3: Any) -> None:
    # A signed request for /healthz is S3 addressing a bucket called "healthz".
    s3.create_bucket(Bucket="healthz")
    s3.put_object(Bucket="healthz", Key="k", Body=b"x")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="healthz")["Contents"]] == ["k"]
    s3.delete_object(Bucket="healthz", Key="k")
    s3.delete_bucket(Bucket="healthz")


# The command line as people use it: help, version, usage and configuration errors, pipes.


def _environment(**extra: str) -> dict[str, str]:
    """The test process's environment without PWG_* settings, able to run ``commands.cli``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PWG_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _cli(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commands.cli", *args],
        cwd=cwd,
        env=_environment(**extra),
        capture_output=True,
        text=True,
        check=False,
    )


def _parsers(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ("pagewright-gateway",)
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the command line with its command words, depth first."""
    yield " ".join(words), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*words, name))


def test_version_is_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert (
        capsys.readouterr().out == f"pagewright-gateway {metadata.version('pagewright-gateway')}\n"
    )


def test_help_is_written_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "S3-compatible gateway for static-site build artifacts" in text
    assert "``" not in text
    assert "reads the environment" not in text
    for command in ("serve", "migrate", "reindex", "verify", "api-key", "artifacts"):
        assert command in text


def test_every_command_and_option_has_help_text() -> None:
    commands = dict(_parsers(_parser()))
    assert {"pagewright-gateway artifacts list", "pagewright-gateway api-key revoke"} <= set(
        commands
    )
    for words, parser in commands.items():
        assert parser.description, f"{words} has no description"
        for action in parser._actions:
            name = "/".join(action.option_strings) or str(action.metavar or action.dest)
            assert action.help, f"{words} {name}"
            assert action.help != argparse.SUPPRESS, f"{words} {name}"
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{words} {choice.dest}"


@pytest.mark.server
def test_serve_has_a_catalog_url_flag(tmp_path: Path) -> None:
    catalog = tmp_path / "elsewhere" / "catalog.sqlite3"
    with running_gateway(tmp_path / "data", "--catalog-url", f"sqlite:///{catalog}"):
        assert catalog.is_file()
    assert not (tmp_path / "data" / "catalog.sqlite3").exists()


@pytest.mark.parametrize(
    ("args", "command", "expected"),
    [
        ((), "", "choose a command: serve, migrate, reindex, verify, api-key, artifacts"),
        (("artifacts",), "artifacts", "choose a command: list, search, show, pin, unpin, set"),
        (("api-key",), "api-key", "choose a command: create, list, revoke"),
        (("artifacts", "list"), "artifacts list", "required: SITE"),
        (("artifacts", "download", "my-site"), "artifacts download", "required: BUILD_ID"),
        (("api-key", "revoke"), "api-key revoke", "required: KEY_ID"),
        (("migrate", "--to", "file:///tmp/x"), "migrate", "required: --from"),
        (("serve", "--no-such-flag"), "", "unrecognized arguments: --no-such-flag"),
    ],
)
def test_usage_errors_are_one_line_in_user_words(
    args: tuple[str, ...], command: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    prog = f"pagewright-gateway {command}".strip()
    assert err.startswith(f"{prog}: ")
    assert err.endswith(f" (see '{prog} --help')\n")
    assert err.count("\n") == 1
    assert expected in err
    for internal in ("artifacts_command", "build_ids", "key_id", "usage:"):
        assert internal not in err


@pytest.mark.parametrize(
    ("args", "environment", "config", "named"),
    [
        (("--log-level", "verbose"), {}, None, "--log-level: log_level = 'verbose'"),
        ((), {"PWG_LOG_FORMAT": "xml"}, None, "PWG_LOG_FORMAT: log_format = 'xml'"),
        ((), {"PWG_LOG_LEVEL": "loud"}, None, "PWG_LOG_LEVEL: log_level = 'loud'"),
        ((), {}, 'log_format = "yaml"\n', "log_format = 'yaml'"),
    ],
)
def test_log_settings_are_checked(
    tmp_path: Path,
    args: tuple[str, ...],
    environment: dict[str, str],
    config: str | None,
    named: str,
) -> None:
    # The port is taken, so a gateway that accepted the setting would fail to listen and exit.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = ["--address", f"127.0.0.1:{port}", *args]
        if config is not None:
            (tmp_path / "gateway.toml").write_text(config)
            options += ["--config", str(tmp_path / "gateway.toml")]
        done = _cli("serve", *options, cwd=tmp_path, **environment)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("pagewright-gateway: ")
    assert named in done.stderr
    assert "is not one of" in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("problem", ["missing", "not PEM"])
def test_unusable_tls_files_are_configuration_errors(problem: str, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    if problem == "not PEM":
        cert.write_text("not a certificate\n")
        key.write_text("not a key\n")
    done = _cli("serve", "--tls-cert", str(cert), "--tls-key", str(key), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"pagewright-gateway: TLS certificate {cert} with key {key}")
    assert done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.server
def test_a_catalog_that_cannot_start_is_named_as_the_catalog(tmp_path: Path) -> None:
    # A SQLite file that cannot be made (a PostgreSQL catalog unreachable at start does not
    # stop the gateway: tests/test_catalog_outage.py).
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = _cli(
        "serve",
        "--address",
        f"127.0.0.1:{free_port()}",
        "--catalog-url",
        f"sqlite:///{blocker / 'catalog.sqlite3'}",
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "pagewright-gateway: the catalog could not start: " in done.stderr
    assert "backend could not start" not in done.stderr


@pytest.fixture(scope="module")
def artifact_site(gateway: InProcessGateway) -> tuple[str, str]:
    """A site with many artifacts on the session gateway, and an API key for it."""
    s3 = make_s3_client(gateway)
    site_name = "pipe-site"
    s3.create_bucket(Bucket=site_name)
    for number in range(30):
        upload(s3, site_name, f"{number:03d}")
    return site_name, create_api_key(gateway)


def _into_closed_pipe(
    args: list[str], cwd: Path, environment: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with stdout on a pipe whose reader has already gone (``... | head``)."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", *args],
            cwd=cwd,
            env=environment,
            stdout=writer,
            stderr=subprocess.PIPE,
        )
    finally:
        os.close(writer)
    _, err = process.communicate()
    return subprocess.CompletedProcess(args, process.returncode, b"", err)


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("command", ["help", "api-key list", "artifacts list"])
def test_a_closed_pipe_ends_quietly(
    command: str,
    buffered: bool,
    tmp_path: Path,
    gateway: InProcessGateway,
    artifact_site: tuple[str, str],
) -> None:
    environment = _environment()
    environment.pop("PYTHONUNBUFFERED", None)
    if not buffered:
        environment["PYTHONUNBUFFERED"] = "1"
    site_name, key = artifact_site
    if command == "help":
        args = ["--help"]
    elif command == "api-key list":
        args = ["api-key", "list", "--data-dir", str(gateway.data_dir)]
    else:
        environment.update(PWG_ENDPOINT=gateway.endpoint, PWG_API_KEY=key)
        args = ["artifacts", "list", site_name]
    done = _into_closed_pipe(args, tmp_path, environment)
    assert done.stderr.decode() == ""
    assert done.returncode in (0, 1)  # 0: argparse drops what it cannot write
