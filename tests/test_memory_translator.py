"""The memory translator's URL and registration (its behaviour is the conformance suite's)."""

from __future__ import annotations

import pytest

from translators.config import BackendConfigError, NoStoreError, parse_backend_url
from translators.memory.backend import MemoryBackend
from translators.multipart import MIN_PART_SIZE
from translators.registry import create_backend


def test_memory_url_makes_a_fresh_store_each_time() -> None:
    spec = parse_backend_url("memory://")
    assert (spec.scheme, spec.redacted()) == ("memory", "memory://")
    first, second = create_backend(spec, {}), create_backend(spec, {})
    assert isinstance(first, MemoryBackend)
    assert isinstance(second, MemoryBackend)
    assert first is not second
    assert (first.name, first.min_part_size) == ("memory", MIN_PART_SIZE)


def test_min_part_size_option() -> None:
    backend = create_backend(parse_backend_url("memory://?min_part_size=1"), {})
    assert isinstance(backend, MemoryBackend)
    assert backend.min_part_size == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memory://?pool=4", "unknown options pool"),
        ("memory://?min_part_size=-1", "min_part_size must be a byte count"),
    ],
)
def test_bad_options_are_named(url: str, message: str) -> None:
    with pytest.raises(BackendConfigError, match=message):
        create_backend(parse_backend_url(url), {})


def test_commands_cannot_open_a_memory_store() -> None:
    """A command runs in its own process: no gateway's memory store is there to open."""
    with pytest.raises(NoStoreError, match="outside its own process"):
        create_backend(parse_backend_url("memory://"), {}, must_exist=True)
