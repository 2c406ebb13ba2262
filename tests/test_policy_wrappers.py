"""Policy wrappers deny by default: each defines every Backend method itself.

A wrapper that inherited a method, or forwarded through ``__getattr__``, would pass a new
Backend method (say, a mutating one) to the inner backend unchecked. Add your wrapper to
``WRAPPERS``; :func:`assert_defines_every_backend_method` is the whole check.
"""

from __future__ import annotations

import inspect

import pytest

from policy.catalog_backend import CatalogBackend
from policy.free_space import FreeSpaceBackend
from policy.quota import QuotaBackend
from policy.retention import RetentionBackend
from policy.validation import ValidationBackend
from translators.base import Backend

WRAPPERS: list[type] = [
    CatalogBackend,
    ValidationBackend,
    QuotaBackend,
    RetentionBackend,
    FreeSpaceBackend,
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
