"""Settings precedence (defaults < TOML < PWG_* < flags) and root credentials."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError, load_settings
from policy.credentials import CREDENTIALS_FILE, load_root_credentials


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.data_dir == Path("data")
    assert settings.address == "127.0.0.1:9000"


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[gateway]\ndata_dir = "/from/toml"\naddress = "0.0.0.0:9100"\nregion = "eu-west-1"\n'
        'domains = ["s3.example.com"]\n'
    )
    from_file = load_settings(config_file=config, environ={})
    assert from_file.data_dir == Path("/from/toml")
    assert (from_file.host, from_file.port) == ("0.0.0.0", 9100)
    assert from_file.domains == ("s3.example.com",)
    from_env = load_settings(
        config_file=config, environ={"PWG_DATA_DIR": "/from/env", "PWG_REGION": "us-west-2"}
    )
    assert from_env.data_dir == Path("/from/env")
    assert from_env.region == "us-west-2"
    from_flags = load_settings(
        config_file=config,
        environ={"PWG_DATA_DIR": "/from/env"},
        overrides={"data_dir": "/from/flag", "address": "127.0.0.1:9200", "region": None},
    )
    assert from_flags.data_dir == Path("/from/flag")
    assert from_flags.port == 9200
    assert from_flags.region == "eu-west-1"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PWG_ADDRESS": "nonsense"}, "HOST:PORT"),
        ({"PWG_MAX_CLOCK_SKEW_SECONDS": "soon"}, "PWG_MAX_CLOCK_SKEW_SECONDS"),
        ({"PWG_ROOT_ACCESS_KEY": "only-one"}, "both"),
    ],
)
def test_invalid_values_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=environ)


def test_scrub_settings(tmp_path: Path) -> None:
    assert (Settings().scrub_interval_seconds, Settings().scrub_rate_bytes) == (86400, 8388608)
    config = tmp_path / "gateway.toml"
    config.write_text("scrub_interval_seconds = 3600\nscrub_rate_bytes = 1000\n")
    from_file = load_settings(config_file=config, environ={})
    assert (from_file.scrub_interval_seconds, from_file.scrub_rate_bytes) == (3600, 1000)
    off = load_settings(config_file=config, environ={"PWG_SCRUB_INTERVAL_SECONDS": "0"})
    assert off.scrub_interval_seconds == 0
    with pytest.raises(SettingsError, match="scrub_rate_bytes must be positive"):
        load_settings(environ={"PWG_SCRUB_RATE_BYTES": "0"})
    with pytest.raises(SettingsError, match="scrub_interval_seconds"):
        load_settings(environ={"PWG_SCRUB_INTERVAL_SECONDS": "-1"})


def test_unknown_config_key(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("colour = 'blue'\n")
    with pytest.raises(SettingsError, match="colour"):
        load_settings(config_file=config, environ={})


def test_root_credentials_generated_once(tmp_path: Path) -> None:
    settings = load_settings(environ={}, overrides={"data_dir": str(tmp_path)})
    first = load_root_credentials(
        settings.data_dir, settings.root_access_key, settings.root_secret_key
    )
    assert first.generated
    path = tmp_path / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_root_credentials(
        settings.data_dir, settings.root_access_key, settings.root_secret_key
    )
    assert not second.generated
    assert second.credential == first.credential


def test_root_credentials_from_settings(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"PWG_ROOT_ACCESS_KEY": "AK", "PWG_ROOT_SECRET_KEY": "SK"},
        overrides={"data_dir": str(tmp_path)},
    )
    loaded = load_root_credentials(
        settings.data_dir, settings.root_access_key, settings.root_secret_key
    )
    assert (loaded.credential.access_key, loaded.credential.secret_key) == ("AK", "SK")
    assert not (tmp_path / CREDENTIALS_FILE).exists()


def test_policy_defaults_from_config(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("[policy]\nquota_bytes = 1000\nrequired_member = 'index.html'\n")
    settings = load_settings(config_file=config, environ={})
    assert settings.policy.quota_bytes == 1000
    assert settings.policy.required_member == "index.html"
    config.write_text("[policy]\nquota_kittens = 3\n")
    with pytest.raises(SettingsError, match="quota_kittens"):
        load_settings(config_file=config, environ={})


@pytest.mark.parametrize(
    "line",
    [
        "max_compression_ratio = nan",
        "max_compression_ratio = inf",
        "retention_days = 1000000",
        "quota_bytes = 9223372036854775808",
        "quota_bytes = -1",
        "quota_bytes = '1000'",
    ],
)
def test_policy_defaults_are_validated_as_overrides_are(tmp_path: Path, line: str) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f"[policy]\n{line}\n")
    with pytest.raises(SettingsError, match=line.split()[0]):
        load_settings(config_file=config, environ={})


def test_catalog_default_is_sqlite_in_data_dir(tmp_path: Path) -> None:
    settings = load_settings(environ={}, overrides={"data_dir": str(tmp_path)})
    assert settings.catalog == f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    assert (
        load_settings(environ={"PWG_CATALOG_URL": "postgresql://h/db"}).catalog
        == "postgresql://h/db"
    )


def test_request_limits_and_lease(tmp_path: Path) -> None:
    defaults = load_settings(environ={})
    assert (defaults.max_header_bytes, defaults.header_timeout_seconds) == (16 * 1024, 60)
    assert (defaults.body_timeout_seconds, defaults.reservation_lease_seconds) == (60, 120)
    config = tmp_path / "gateway.toml"
    config.write_text("max_header_bytes = 32768\nheader_timeout_seconds = 5\n")
    environ = {"PWG_BODY_TIMEOUT_SECONDS": "7", "PWG_RESERVATION_LEASE_SECONDS": "30"}
    settings = load_settings(config_file=config, environ=environ)
    assert (settings.max_header_bytes, settings.header_timeout_seconds) == (32768, 5)
    assert (settings.body_timeout_seconds, settings.reservation_lease_seconds) == (7, 30)
    with pytest.raises(SettingsError, match="max_header_bytes"):
        load_settings(environ={"PWG_MAX_HEADER_BYTES": "0"})


def test_breaker_settings(tmp_path: Path) -> None:
    assert (Settings().breaker_failures, Settings().breaker_reset_seconds) == (5, 5.0)
    config = tmp_path / "gateway.toml"
    config.write_text("breaker_failures = 3\nbreaker_reset_seconds = 1.5\n")
    from_file = load_settings(config_file=config, environ={})
    assert (from_file.breaker_failures, from_file.breaker_reset_seconds) == (3, 1.5)
    from_env = load_settings(config_file=config, environ={"PWG_BREAKER_FAILURES": "8"})
    assert from_env.breaker_failures == 8
    with pytest.raises(SettingsError, match="breaker_failures must be at least 1"):
        load_settings(environ={"PWG_BREAKER_FAILURES": "0"})
    with pytest.raises(SettingsError, match="breaker_reset_seconds must be positive"):
        load_settings(environ={"PWG_BREAKER_RESET_SECONDS": "0"})
