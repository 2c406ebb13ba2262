"""Backend URL -> a started-on-demand translator. The one place translators are chosen."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from translators.base import Backend
from translators.config import BackendSpec
from translators.filesystem import FilesystemBackend


def create_backend(spec: BackendSpec, environ: Mapping[str, str]) -> Backend:
    """The translator for ``spec``; SDK settings come from ``environ`` (the process env)."""
    if spec.scheme == "file":
        return FilesystemBackend(Path(spec.container))
    if spec.scheme == "gcs":
        from translators.gcs import GCSBackend

        return GCSBackend.from_spec(spec, environ)
    if spec.scheme == "azure":
        from translators.azure import AzureBackend

        return AzureBackend.from_spec(spec, environ)
    if spec.scheme == "s3":
        from translators.s3 import S3Backend

        return S3Backend.from_spec(spec, environ)
    raise NotImplementedError(f"the {spec.scheme} translator is not available yet")
