"""The Azure translator's read chunk: ``chunk_size`` in its backend URL, bounded."""

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


def _config(url: str) -> Any:
    backend = AzureBackend.from_spec(
        parse_backend_url(url), {"AZURE_STORAGE_CONNECTION_STRING": _CONNECTION}
    )
    return backend.store.service._config  # the SDK client's transfer settings


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
