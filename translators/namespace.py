"""Where gateway buckets and keys live in a remote store (S3, Azure, GCS).

Two mappings, chosen by configuration:

* ``prefix`` (the default): every gateway bucket lives in ONE backend bucket/container, under
  ``<root prefix>/<gateway bucket>/``. Cloud accounts cap how many buckets they hold, and any
  valid S3 bucket name works here, even one a backend could not hold as a container name
  (Azure forbids dots, for one).
* ``bucket``: each gateway bucket is a backend bucket/container of the same name (optionally
  prefixed by ``container_prefix``); the root prefix, if any, applies inside each one, and
  keys are stored verbatim, so other tools see the objects under their own names.

The gateway's own bookkeeping (bucket markers, in-progress multipart uploads) always lives in
the configured container under ``<root prefix>/.pagewright/``. In ``prefix`` mode a gateway
bucket name never starts with a dot, so it can never collide with objects; in ``bucket``
mode the configured container holds only bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.errors import S3Error

Mapping = Literal["prefix", "bucket"]
SYSTEM = ".pagewright"


@dataclass(frozen=True)
class Location:
    """A place in the backend: container (bucket) and object name."""

    container: str
    name: str


@dataclass(frozen=True)
class Namespace:
    """Maps gateway (bucket, key) pairs to backend :class:`Location` values and back."""

    container: str  # the backend bucket/container: everything (prefix) or bookkeeping (bucket)
    prefix: str = ""  # root prefix inside the container, without leading/trailing "/"
    mapping: Mapping = "prefix"
    container_prefix: str = ""  # bucket mapping: backend container = container_prefix + bucket

    def __post_init__(self) -> None:
        if not self.container:
            raise ValueError("a backend bucket or container is required")

    def _root(self) -> str:
        return f"{self.prefix.strip('/')}/" if self.prefix.strip("/") else ""

    def root(self) -> str:
        """The root prefix with its trailing ``/`` (empty without one): in ``prefix``
        mapping every gateway bucket and the bookkeeping area are below it."""
        return self._root()

    def container_for(self, bucket: str) -> str:
        """The backend container holding ``bucket``'s objects."""
        return self.container if self.mapping == "prefix" else self.container_prefix + bucket

    def bucket_prefix(self, bucket: str) -> str:
        """The object-name prefix of ``bucket``'s objects in its container."""
        if self.mapping == "prefix":
            return f"{self._root()}{bucket}/"
        return self._root()

    def object(self, bucket: str, key: str) -> Location:
        """The backend location of ``key`` in ``bucket`` (keys are used verbatim)."""
        return Location(self.container_for(bucket), self.bucket_prefix(bucket) + key)

    def key_of(self, bucket: str, name: str) -> str:
        """The gateway key of a backend object name listed under ``bucket_prefix(bucket)``."""
        prefix = self.bucket_prefix(bucket)
        if not name.startswith(prefix):
            raise S3Error("InternalError", f"backend object {name!r} is outside bucket {bucket!r}")
        return name[len(prefix) :]

    def system(self, *parts: str) -> Location:
        """A location in the bookkeeping area: ``<container>:<root>.pagewright/a/b``."""
        return Location(self.container, f"{self._root()}{SYSTEM}/" + "/".join(parts))

    def bucket_marker(self, bucket: str) -> Location:
        """The object whose existence says the gateway bucket exists (both mappings)."""
        return self.system("buckets", bucket)

    def buckets_prefix(self) -> str:
        """The name prefix under which bucket markers are listed."""
        return self.system("buckets").name + "/"
