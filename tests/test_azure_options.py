"""The Azure translator's client settings: the read chunk (``chunk_size`` in its backend URL,
bounded) and the proxy, decided once from the environment (:mod:`translators.proxies`)."""

from __future__ import annotations

from typing import Any

import pytest

from translators.azure.backend import CHUNK_SIZE, MIB, AzureBackend
from translators.config import BackendConfigError, parse_backend_url

#: Azurite's well-known development account; nothing is contacted while building.
_CONNECTION = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)


def _service(url: str, **environ: str) -> Any:
    backend = AzureBackend.from_spec(
        parse_backend_url(url), {"AZURE_STORAGE_CONNECTION_STRING": _CONNECTION, **environ}
    )
    return backend.store.service


def _config(url: str) -> Any:
    return _service(url)._config  # the SDK client's transfer settings


def test_reads_go_in_chunks_of_8_mib_by_default() -> None:
    config = _config("azure://site")
    assert CHUNK_SIZE == 8 * MIB
    assert config.max_single_get_size == CHUNK_SIZE
    assert config.max_chunk_get_size == CHUNK_SIZE


def test_chunk_size_is_configurable() -> None:
    config = _config(f"azure://site?chunk_size={2 * MIB}")
    assert config.max_chunk_get_size == 2 * MIB
    assert config.max_single_get_size == 2 * MIB


@pytest.mark.parametrize("value", ["1000", str(257 * MIB), "lots"])
def test_chunk_size_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(BackendConfigError, match="azure backend"):
        _config(f"azure://site?chunk_size={value}")


def test_the_transport_does_not_look_up_the_environment_per_request() -> None:
    """aiohttp trusting the environment reads ~/.netrc in a thread on every request."""
    service = _service("azure://site", HTTP_PROXY="http://proxy.example:3128")
    assert service._pipeline._transport._use_env_settings is False
    assert service._config.proxy_policy.proxies == {"http": "http://proxy.example:3128"}


def test_no_proxy_naming_the_endpoint_means_no_proxy() -> None:
    service = _service("azure://site", HTTP_PROXY="http://proxy.example:3128", NO_PROXY="127.0.0.1")
    assert not service._config.proxy_policy.proxies
