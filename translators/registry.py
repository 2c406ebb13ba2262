"""Backend URL -> a started-on-demand translator. The one place translators are chosen."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from translators.base import Backend
from translators.config import BackendSpec, NoStoreError
from translators.filesystem.backend import FilesystemBackend
from translators.filesystem.store import holds_store


def create_backend(
    spec: BackendSpec, environ: Mapping[str, str], *, must_exist: bool = False
) -> Backend:
    """The translator for ``spec``; SDK settings come from ``environ`` (the process env).

    A filesystem store that does not exist yet is created when it starts (the gateway's
    first start), unless ``must_exist`` (commands that read a store): then a directory
    without a store is refused here with :class:`NoStoreError`, before anything is
    created. A memory store starts empty and lives in its process only, so ``must_exist``
    refuses it (no command can open a running gateway's memory). Remote translators
    refuse a missing bucket or container when they start, unless their URL says
    ``create=true``.
    """
    if spec.scheme == "file":
        if must_exist and not holds_store(Path(spec.container)):
            raise NoStoreError(f"{spec.redacted()} holds no gateway storage")
        # A command's store may be a running gateway's: its start must not clean up.
        return FilesystemBackend(Path(spec.container), housekeeping=not must_exist)
    if spec.scheme == "memory":
        if must_exist:
            raise NoStoreError(f"{spec.redacted()} holds no store outside its own process")
        from translators.memory.backend import MemoryBackend

        return MemoryBackend.from_spec(spec)
    if spec.scheme == "gcs":
        from translators.gcs.backend import GCSBackend

        return GCSBackend.from_spec(spec, environ)
    if spec.scheme == "azure":
        from translators.azure.backend import AzureBackend

        return AzureBackend.from_spec(spec, environ)
    if spec.scheme == "s3":
        from translators.s3.backend import S3Backend

        return S3Backend.from_spec(spec, environ)
    raise NotImplementedError(f"the {spec.scheme} translator is not available yet")
