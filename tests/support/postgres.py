"""PostgreSQL for tests: a fresh schema per test on the server at ``PWG_TEST_POSTGRES_URL``.

Each schema is private to one test (parallel-safe under xdist) and dropped afterwards. A
server that cannot be reached skips the test, or fails it under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
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
    """A PostgreSQL cluster of this test's own (so it can be stopped and started again on
    the same port, as an operator would with ``pg_ctl``): its URL."""

    url: str
    _pg_ctl: list[str | Path]
    _options: str
    _log: Path
    _user: str | None
    running: bool = False

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: open connections are cut, the server is gone on return."""
        if self.running:
            self._run("stop", "-m", "fast")
            self.running = False

    def start(self) -> None:
        """``pg_ctl start``: the same cluster on the same port, answering on return."""
        if not self.running:
            self._run("start", "-o", self._options, "-l", self._log)
            self.running = True

    def _run(self, *args: str | Path) -> None:
        subprocess.run(
            [*self._pg_ctl, "-w", "-t", "60", *args],
            user=self._user,
            capture_output=True,
            check=True,
        )


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    on_path = shutil.which("pg_ctl")
    if not found and on_path is not None:
        found = [Path(on_path).resolve()]
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
        server = PrivateServer(
            f"postgresql://postgres@127.0.0.1:{port}/postgres",
            [binaries / "pg_ctl", "-D", data],
            f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off",
            directory / "server.log",
            user,
        )
        try:
            server.start()
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
