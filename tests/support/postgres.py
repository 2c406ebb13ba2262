"""PostgreSQL for tests: a fresh schema per test on the server at ``PWG_TEST_POSTGRES_URL``.

Each schema is private to one test (parallel-safe under xdist) and dropped afterwards. A
server that cannot be reached skips the test, or fails it under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from tests.support.servers import free_port

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("PWG_TEST_POSTGRES_URL", DEFAULT_URL)


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A database URL whose connections use a new, empty schema (``search_path``)."""
    url = make_url(server_url())
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    schema = f"pwg_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        admin.dispose()
        message = f"PostgreSQL at {url.render_as_string()} is not reachable: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        rendered = url.render_as_string(hide_password=False)
        separator = "&" if "?" in rendered else "?"
        yield f"{rendered}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def catalog_url(kind: str, directory: Path) -> Iterator[str]:
    """A URL for an empty catalog: ``sqlite`` (a file in ``directory``) or ``postgresql``."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'catalog.sqlite3'}"
        return
    with fresh_schema() as url:
        yield url


@dataclass
class PrivateServer:
    """A PostgreSQL server of this test's own (so it can be stopped): its URL and process."""

    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: connections are cut
            self.process.wait(timeout=60)


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        message = "PostgreSQL server binaries are not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found[-1].parent


@contextmanager
def private_server() -> Iterator[PrivateServer]:
    """A fresh PostgreSQL cluster on a free 127.0.0.1 port, run as the ``postgres`` user
    when the tests run as root (PostgreSQL refuses to run as root); removed afterwards."""
    binaries = _postgres_bin()
    user = "postgres" if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="pwg-pg-"))  # reachable by that user
    if user:
        shutil.chown(directory, user)
    data = directory / "data"
    try:
        subprocess.run(
            [binaries / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
            user=user,
            capture_output=True,
            check=True,
        )
        port = free_port()
        process = subprocess.Popen(
            [
                binaries / "postgres",
                "-D",
                data,
                "-p",
                str(port),
                "-k",
                directory,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ],
            user=user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = PrivateServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", process)
        try:
            for _ in range(400):
                ready = subprocess.run(
                    [binaries / "pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                    capture_output=True,
                    check=False,
                )
                if ready.returncode == 0 or process.poll() is not None:
                    break
                time.sleep(0.05)
            assert process.poll() is None, "the private PostgreSQL server did not start"
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
