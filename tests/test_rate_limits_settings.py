"""The rate-limit settings: names, types, refusals, and what reaches the limiter."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import SettingsError, load_settings
from policy.model import SitePolicy
from policy.rate_limits import RateLimitConfig


def test_rate_limits_are_off_by_default() -> None:
    settings = load_settings(environ={})
    assert settings.rate_limits == RateLimitConfig()
    assert settings.redis_url == ""
    assert settings.policy.site_requests_per_second is None
    assert settings.policy.site_bytes_per_second is None


def test_rate_limits_from_the_environment() -> None:
    settings = load_settings(
        environ={
            "PWG_PRINCIPAL_REQUESTS_PER_SECOND": "2.5",
            "PWG_PRINCIPAL_REQUEST_BURST": "10",
            "PWG_PRINCIPAL_BYTES_PER_SECOND": "1048576",
            "PWG_PRINCIPAL_BYTE_BURST": "4194304",
            "PWG_AUTH_FAILURE_LIMIT": "20",
            "PWG_AUTH_FAILURE_WINDOW_SECONDS": "60",
            "PWG_REDIS_URL": "redis://127.0.0.1:6379/2",
            "PWG_REDIS_KEY_PREFIX": "site-a:",
        }
    )
    assert settings.rate_limits == RateLimitConfig(
        principal_requests_per_second=2.5,
        principal_request_burst=10,
        principal_bytes_per_second=1048576,
        principal_byte_burst=4194304,
        auth_failure_limit=20,
        auth_failure_window_seconds=60.0,
        redis_url="redis://127.0.0.1:6379/2",
        redis_key_prefix="site-a:",
    )


def test_rate_limits_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        "principal_requests_per_second = 50\n"
        "auth_failure_limit = 20\n"
        'redis_url = "redis://127.0.0.1:6379/0"\n'
        "[policy]\n"
        "site_requests_per_second = 200.0\n"
        "site_request_burst = 400\n"
        "site_bytes_per_second = 104857600\n"
        "site_byte_burst = 209715200\n"
    )
    settings = load_settings(config_file=config, environ={})
    assert settings.principal_requests_per_second == 50.0
    assert settings.auth_failure_limit == 20
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.policy == SitePolicy(
        site_requests_per_second=200.0,
        site_request_burst=400,
        site_bytes_per_second=104857600,
        site_byte_burst=209715200,
    )


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"PWG_PRINCIPAL_REQUESTS_PER_SECOND": "-1"}, "principal_requests_per_second must be 0"),
        ({"PWG_PRINCIPAL_REQUESTS_PER_SECOND": "nan"}, "is not valid"),
        ({"PWG_PRINCIPAL_REQUESTS_PER_SECOND": "fast"}, "is not valid"),
        ({"PWG_PRINCIPAL_BYTE_BURST": "1.5"}, "is not valid"),
        ({"PWG_AUTH_FAILURE_LIMIT": "-3"}, "auth_failure_limit must be 0"),
        ({"PWG_AUTH_FAILURE_WINDOW_SECONDS": "0"}, "at least 1"),
        ({"PWG_REDIS_URL": "http://127.0.0.1:6379"}, "redis_url must be"),
    ],
)
def test_bad_rate_limit_settings_are_refused(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        load_settings(environ=environ)


@pytest.mark.parametrize(
    "line",
    [
        "site_requests_per_second = -1.0",
        "site_requests_per_second = nan",
        "site_request_burst = 2.5",
        'site_bytes_per_second = "fast"',
        "site_byte_burst = true",
    ],
)
def test_bad_site_rate_limits_are_refused(tmp_path: Path, line: str) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f"[policy]\n{line}\n")
    with pytest.raises(SettingsError, match=r"\[policy\]"):
        load_settings(config_file=config, environ={})


def test_the_redis_url_is_kept_out_of_the_settings_repr() -> None:
    settings = load_settings(environ={"PWG_REDIS_URL": "redis://:s3cret@127.0.0.1:6379/0"})
    assert settings.redis_url == "redis://:s3cret@127.0.0.1:6379/0"
    assert "s3cret" not in repr(settings)
