"""translators.proxies: the proxy a translator uses for its one endpoint, decided once
from the standard variables, as urllib reads them."""

from __future__ import annotations

import pytest

from translators.proxies import environment_proxies, proxies_for


def test_no_variables_means_no_proxy() -> None:
    assert proxies_for("https://acct.blob.core.windows.net", {}) == {}


def test_the_lower_case_spelling_wins() -> None:
    environ = {"HTTPS_PROXY": "http://upper:3128", "https_proxy": "http://lower:3128"}
    assert environment_proxies(environ)["https"] == "http://lower:3128"
    assert proxies_for("https://acct.blob.core.windows.net", environ) == {
        "https": "http://lower:3128"
    }


def test_all_proxy_stands_in_for_a_missing_scheme() -> None:
    environ = {"ALL_PROXY": "http://all:3128", "HTTP_PROXY": "http://plain:3128"}
    assert proxies_for("https://storage.example", environ) == {
        "http": "http://plain:3128",
        "https": "http://all:3128",
    }


AZURE = "https://acct.blob.core.windows.net"
LOCAL = "http://127.0.0.1:10000/devstoreaccount1"


@pytest.mark.parametrize(
    ("no_proxy", "url", "direct"),
    [
        ("127.0.0.1,localhost", LOCAL, True),
        ("127.0.0.1,localhost", AZURE, False),
        (".windows.net", AZURE, True),
        ("windows.net", AZURE, True),
        ("*", AZURE, True),
        ("*", LOCAL, True),
        ("example.org", AZURE, False),
        ("", LOCAL, False),
    ],
)
def test_no_proxy_names_the_hosts_that_go_direct(no_proxy: str, url: str, direct: bool) -> None:
    environ = {"HTTPS_PROXY": "http://proxy:3128", "HTTP_PROXY": "http://proxy:3128"}
    found = proxies_for(url, {**environ, "NO_PROXY": no_proxy})
    assert found == ({} if direct else {"http": "http://proxy:3128", "https": "http://proxy:3128"})


def test_the_gcs_session_does_not_look_up_the_environment_per_request() -> None:
    """requests trusting the environment reads the variables and ~/.netrc on every request."""
    from translators.config import BackendSpec
    from translators.gcs.client import GCSSettings, make_client

    environ = {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:9", "HTTP_PROXY": "http://proxy:3128"}
    settings = GCSSettings.from_spec(BackendSpec("gcs", "site"), environ)
    assert settings.proxies == {"http": "http://proxy:3128"}
    _, session = make_client(settings)
    try:
        assert session.trust_env is False
        assert session.proxies == {"http": "http://proxy:3128"}
    finally:
        session.close()  # type: ignore[no-untyped-call]
