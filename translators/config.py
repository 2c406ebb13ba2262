"""Backend URLs: which store the gateway translates to, and how its buckets map onto it.

``file:///path`` | ``s3://bucket[/prefix]`` | ``azure://container[/prefix]`` |
``gcs://bucket[/prefix]`` | ``memory://`` (held in the process, nothing durable: tests and
throw-away gateways), with optional query options:

* ``mapping=prefix|bucket`` (see :mod:`translators.namespace`; default ``prefix``),
* ``container_prefix=NAME-`` (bucket mapping: backend containers are ``NAME-<bucket>``),
* translator options, e.g. ``pool=64`` or ``addressing=virtual`` for S3.

Endpoints and credentials are not part of the URL: each translator takes them from its SDK's
standard environment variables (``AWS_ENDPOINT_URL``, ``AZURE_STORAGE_CONNECTION_STRING``,
``STORAGE_EMULATOR_HOST`` ...), so an emulator or a real account is one variable away.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from translators.namespace import Mapping as NamespaceMapping
from translators.namespace import Namespace

Scheme = Literal["file", "s3", "azure", "gcs", "memory"]
SCHEMES: tuple[Scheme, ...] = ("file", "s3", "azure", "gcs", "memory")


class BackendConfigError(ValueError):
    """A backend URL that cannot be used; the message says why."""


class NoStoreError(BackendConfigError):
    """A backend URL that must name an existing store names a place that holds none."""


@dataclass(frozen=True)
class BackendSpec:
    """A parsed backend URL. For ``file`` the ``container`` is the directory path."""

    scheme: Scheme
    container: str
    prefix: str = ""
    mapping: NamespaceMapping = "prefix"
    container_prefix: str = ""
    options: Mapping[str, str] = field(default_factory=dict)

    def namespace(self) -> Namespace:
        return Namespace(self.container, self.prefix, self.mapping, self.container_prefix)

    def redacted(self) -> str:
        """The URL without options (options never hold secrets, but stay terse in logs)."""
        if self.scheme in ("file", "memory"):
            return f"{self.scheme}://{self.container}"
        suffix = f"/{self.prefix}" if self.prefix else ""
        return f"{self.scheme}://{self.container}{suffix}"


def parse_backend_url(url: str) -> BackendSpec:
    """Parse a backend URL; :class:`BackendConfigError` names what is wrong."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise BackendConfigError(
            f"backend {url!r}: unknown scheme {parts.scheme!r}; use one of "
            + ", ".join(f"{s}://" for s in SCHEMES)
        )
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    if scheme == "file":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise BackendConfigError(f"backend {url!r}: file:// needs a directory path")
        return BackendSpec("file", path, options=options)
    if scheme == "memory":
        return BackendSpec("memory", parts.netloc, options=options)
    container = parts.netloc
    if not container:
        raise BackendConfigError(f"backend {url!r}: name the bucket or container after {scheme}://")
    mapping = options.pop("mapping", "prefix")
    if mapping not in ("prefix", "bucket"):
        raise BackendConfigError(f"backend {url!r}: mapping must be 'prefix' or 'bucket'")
    return BackendSpec(
        scheme=cast(Scheme, scheme),
        container=container,
        prefix=unquote(parts.path).strip("/"),
        mapping=cast(NamespaceMapping, mapping),
        container_prefix=options.pop("container_prefix", ""),
        options=options,
    )
