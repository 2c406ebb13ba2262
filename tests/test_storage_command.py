"""Commands that read a store (verify, reindex, api-key, migrate's source) refuse a data dir,
backend or catalog that holds none, and create nothing there; the gateway's own first start
still creates its store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from commands.cli import main
from policy.catalog import SqlCatalog
from tests.support.emulators import running, start_moto
from tests.support.postgres import fresh_schema
from tests.support.servers import running_gateway

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server


@pytest.fixture(autouse=True)
def _no_gateway_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("PWG_BACKEND", "PWG_CATALOG_URL", "PWG_DATA_DIR"):
        monkeypatch.delenv(variable, raising=False)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


STORE_COMMANDS = [
    ("verify",),
    ("verify", "--no-catalog"),
    ("reindex",),
    ("api-key", "create"),
    ("api-key", "list"),
    ("api-key", "revoke", "some-id"),
]


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("data_dir", ["missing", "empty"])
def test_a_data_dir_without_a_store_is_refused_and_left_alone(
    command: tuple[str, ...],
    data_dir: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    if data_dir == "empty":
        data.mkdir()
    before = _tree(tmp_path)

    status = main([*command, "--data-dir", str(data)])

    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert err.startswith(f"pagewright-gateway {command[0]}: ")
    assert err.count("\n") == 1
    assert str(data) in err
    assert "--data-dir" in err
    assert _tree(tmp_path) == before


def test_the_first_start_creates_the_store_the_commands_then_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert main(["api-key", "create", "--data-dir", str(data)]) == 2
    with running_gateway(data):
        pass
    capsys.readouterr()
    assert main(["api-key", "create", "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out.startswith("pwg_")
    assert main(["verify", "--data-dir", str(data)]) == 0
    assert main(["reindex", "--data-dir", str(data)]) == 0


def test_verify_needs_the_catalog_unless_told_not_to_mark_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    with running_gateway(data):
        pass
    (data / "catalog.sqlite3").unlink()
    for suffix in ("-wal", "-shm"):
        (data / f"catalog.sqlite3{suffix}").unlink(missing_ok=True)
    before = _tree(tmp_path)
    assert main(["verify", "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"no catalog at {data / 'catalog.sqlite3'}" in err
    assert _tree(tmp_path) == before
    assert main(["verify", "--data-dir", str(data), "--no-catalog"]) == 0
    assert "verified 0 artifacts" in capsys.readouterr().out


def test_migrate_from_a_missing_source_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = tmp_path / "nonexistent", tmp_path / "target"
    status = main(
        ["migrate", "--no-progress", "--from", f"file://{source}", "--to", f"file://{target}"]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert err == f"pagewright-gateway migrate: --from file://{source} holds no gateway storage\n"
    assert _tree(tmp_path) == []


def test_api_key_needs_a_migrated_postgresql_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fresh_schema() as url:
        args = ["api-key", "list", "--catalog-url", url]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "no catalog at postgresql+psycopg://" in err

        async def migrate() -> None:
            catalog = SqlCatalog(url)
            await catalog.start()
            await catalog.close()

        asyncio.run(migrate())
        assert main(args) == 0


def test_an_unreachable_catalog_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://someone:secret-password@127.0.0.1:1/nothing"
    assert main(["api-key", "list", "--catalog-url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pagewright-gateway api-key: cannot open the catalog ")
    assert "secret-password" not in err


@pytest.mark.parametrize("command", ["verify", "reindex", "migrate"])
def test_a_missing_remote_bucket_is_refused(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with running(start_moto, tmp_path) as moto:
        for name, value in moto.env.items():
            monkeypatch.setenv(name, value)
        backend = "s3://no-such-bucket/gateway"
        if command == "migrate":
            target = tmp_path / "target"
            args = ["migrate", "--no-progress", "--from", backend, "--to", f"file://{target}"]
        else:
            args = [command, "--backend", backend, "--catalog-url", f"sqlite:///{tmp_path}/c.db"]
            if command == "verify":
                args.append("--no-catalog")
        status = main(args)
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith(f"pagewright-gateway {command}: ")
    assert "'no-such-bucket' does not exist" in err
    assert "Traceback" not in err


def test_store_commands_leave_a_running_gateways_writes_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    storage = data / "storage"
    with running_gateway(data):
        # What an upload in flight leaves for a moment: a temp file being written, and a
        # blob renamed into place whose row is not committed yet.
        in_flight = storage / "tmp" / "upload-in-flight"
        in_flight.write_bytes(b"half an upload")
        renamed = storage / "blobs" / "ab" / "ab0123456789-not-committed-yet"
        renamed.write_bytes(b"a whole upload")
        commands = [
            ["verify", "--data-dir", str(data)],
            ["reindex", "--data-dir", str(data)],
            [
                "migrate",
                "--no-progress",
                "--from",
                f"file://{storage}",
                "--to",
                f"file://{tmp_path}/copy",
            ],
        ]
        for command in commands:
            assert main(command) == 0, capsys.readouterr().err
            assert in_flight.read_bytes() == b"half an upload", command[0]
            assert renamed.read_bytes() == b"a whole upload", command[0]
