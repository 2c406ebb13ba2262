"""Policy wrappers deny by default: each defines every Backend method itself.

A wrapper that inherited a method, or forwarded through ``__getattr__``, would pass a new
Backend method (say, a mutating one) to the inner backend unchecked. Add your wrapper to
``WRAPPERS``; :func:`assert_defines_every_backend_method` is the whole walk. The same rule
is enforced when a wrapper class is defined (:mod:`policy.forwarding`); the tests below
show that check firing.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from core.context import RequestContext
from policy.backend_spans import BackendSpans
from policy.backend_start import StartingBackend
from policy.catalog_backend import CatalogBackend
from policy.circuit_breaker import CircuitBreakerBackend
from policy.completed_uploads import CompletedUploadsBackend
from policy.forwarding import BACKEND_METHODS, ForwardingBackend
from policy.free_space import FreeSpaceBackend
from policy.metrics_backend import MeasuredBackend
from policy.quota import QuotaBackend
from policy.retention import RetentionBackend
from policy.validation import ValidationBackend
from translators.base import Backend
from translators.filesystem.backend import FilesystemBackend

WRAPPERS: list[type] = [
    CatalogBackend,
    ValidationBackend,
    QuotaBackend,
    RetentionBackend,
    FreeSpaceBackend,
    MeasuredBackend,
    StartingBackend,
    CircuitBreakerBackend,
    BackendSpans,
    CompletedUploadsBackend,
]


def backend_methods() -> dict[str, inspect.Signature]:
    """Every public method of the Backend protocol, with its signature."""
    return {
        name: inspect.signature(member)
        for name, member in vars(Backend).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


def assert_defines_every_backend_method(wrapper: type) -> None:
    """Fail unless ``wrapper`` defines each Backend method in its own body, as a coroutine
    function with the protocol's parameters, and has no ``__getattr__`` fallback."""
    assert not hasattr(wrapper, "__getattr__"), f"{wrapper.__name__} must not use __getattr__"
    own = vars(wrapper)
    for name, signature in backend_methods().items():
        assert name in own, f"{wrapper.__name__} does not define {name}"
        method = own[name]
        assert inspect.iscoroutinefunction(method), f"{wrapper.__name__}.{name} is not async"
        assert list(inspect.signature(method).parameters) == list(signature.parameters), (
            f"{wrapper.__name__}.{name} has parameters other than Backend.{name}'s"
        )


def test_the_walk_sees_the_backend_interface() -> None:
    methods = backend_methods()
    assert {"put_object", "delete_bucket", "complete_multipart_upload", "start"} <= set(methods)


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda w: w.__name__)
def test_wrapper_defines_every_backend_method(wrapper: type) -> None:
    assert_defines_every_backend_method(wrapper)


def test_the_walk_catches_an_inherited_method() -> None:
    class Partial(CatalogBackend):
        """Inherits every method: forwarding nothing it checked itself."""

    with pytest.raises(AssertionError, match="does not define"):
        assert_defines_every_backend_method(Partial)


ALL_BUT_PUT = BACKEND_METHODS - {"put_object"}


def test_a_wrapper_missing_a_method_is_not_defined() -> None:
    with pytest.raises(TypeError, match=r"neither defines nor passes through \['put_object'\]"):

        class Missing(ForwardingBackend, passes_through=ALL_BUT_PUT):
            pass


def test_a_wrapper_passing_through_a_method_it_defines_is_not_defined() -> None:
    with pytest.raises(TypeError, match=r"both defines and passes through \['delete_object'\]"):

        class Both(ForwardingBackend, passes_through=BACKEND_METHODS):
            async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
                raise AssertionError("never called")


@pytest.mark.parametrize("name", ["put_objects", "_record", "name", "__init__"])
def test_a_wrapper_passing_through_a_non_method_is_not_defined(name: str) -> None:
    with pytest.raises(TypeError, match="which are not Backend methods"):

        class Unknown(ForwardingBackend, passes_through=BACKEND_METHODS | {name}):
            pass


def test_a_wrapper_naming_every_method_forwards_each_from_its_own_body() -> None:
    class Transparent(ForwardingBackend, passes_through=BACKEND_METHODS):
        pass

    assert Transparent.passes_through == BACKEND_METHODS
    assert_defines_every_backend_method(Transparent)


def test_the_checked_set_is_the_backend_interface() -> None:
    assert set(backend_methods()) == BACKEND_METHODS


def test_the_base_alone_forwards_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="subclass it"):
        ForwardingBackend(FilesystemBackend(tmp_path, fsync=False))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_an_around_wrapper_wraps_every_call_but_those_it_passes_through() -> None:
    from collections.abc import Awaitable, Callable
    from typing import TypeVar

    from policy.around import AroundBackend
    from tests.conformance.payload import MemoryPayload
    from translators.base import WriteConditions, WriteMetadata
    from translators.memory.backend import MemoryBackend

    T = TypeVar("T")
    seen: list[tuple[str, str | None]] = []

    class Recording(AroundBackend, passes_through={"start", "close"}):
        async def around(
            self, call: str, bucket: str | None, invoke: Callable[[], Awaitable[T]]
        ) -> T:
            seen.append((call, bucket))
            return await invoke()

    assert_defines_every_backend_method(Recording)
    backend = Recording(MemoryBackend())
    ctx = RequestContext(request_id="r", principal="test")
    await backend.start()
    await backend.create_bucket(ctx, "site")

    info = await backend.put_object(
        ctx, "site", "k", MemoryPayload(b"hello"), WriteMetadata(), WriteConditions()
    )
    assert info.size == 5
    assert [b.name for b in await backend.list_buckets(ctx)] == ["site"]
    await backend.close()
    assert seen == [("create_bucket", "site"), ("put_object", "site"), ("list_buckets", None)]
