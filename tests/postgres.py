"""PostgreSQL for tests: a fresh schema per test on the server at ``PWG_TEST_POSTGRES_URL``.

Each schema is private to one test (parallel-safe under xdist) and dropped afterwards. A
server that cannot be reached skips the test, or fails it under ``CI=true``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

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
