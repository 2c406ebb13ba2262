"""The rules an artifact's members follow, and what a valid archive held.

Each check raises the :class:`~core.errors.S3Error` of its rule (the list is in
:mod:`policy.archive`); :func:`invalid_archive` is the error of a malformed archive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from core.errors import S3Error

_SEPARATORS: Final = re.compile(r"[/\\]")


@dataclass(frozen=True)
class ArchiveReport:
    """What a valid archive held.

    ``members`` counts real entries (files, directories, links), not metadata headers;
    ``uncompressed_bytes`` is the size of the tar stream; ``compressed_bytes`` what was fed.
    ``found_required_member`` is True when the policy names no required member.
    """

    members: int
    uncompressed_bytes: int
    compressed_bytes: int
    required_member: str | None
    found_required_member: bool


def invalid_archive(detail: str) -> S3Error:
    """``InvalidArchive``: the bytes are not a well-formed (compressed) tar stream."""
    return S3Error("InvalidArchive", f"Archive integrity: {detail}.", Rule="archive_integrity")


def normalise_member(name: str) -> str:
    """A member name without leading ``./`` or ``/`` and trailing ``/``, for matching."""
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


def check_path(name: str) -> None:
    """Reject an absolute name or one with a ``..`` component (``\\`` counts as ``/`` too)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise S3Error(
            "UnsafeArchivePath",
            f"Archive rule safe paths: member {name!r} has an absolute path.",
            Rule="safe_paths",
            Member=name,
        )
    if ".." in _SEPARATORS.split(name):
        raise S3Error(
            "UnsafeArchivePath",
            f"Archive rule safe paths: member {name!r} has a '..' component.",
            Rule="safe_paths",
            Member=name,
        )


def _unsafe_link(name: str, target: str, kind: str) -> S3Error:
    return S3Error(
        "UnsafeArchiveLink",
        f"Archive rule safe links: {kind} {name!r} points to {target!r}, outside the archive.",
        Rule="safe_links",
        Member=name,
    )


def check_symlink(name: str, target: str) -> None:
    """A symlink's target, resolved from the link's directory, must stay inside the root."""
    if not target:
        raise invalid_archive(f"symlink {name!r} has an empty target")
    if target.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", target):
        raise _unsafe_link(name, target, "symlink")
    depth = 0
    parts = _SEPARATORS.split(name.rstrip("/"))[:-1] + _SEPARATORS.split(target)
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                raise _unsafe_link(name, target, "symlink")
        else:
            depth += 1


def check_hardlink(name: str, target: str) -> None:
    """A hard link names another member from the root: no absolute path, no ``..``."""
    if not target:
        raise invalid_archive(f"hard link {name!r} has an empty target")
    if (
        target.startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", target)
        or ".." in _SEPARATORS.split(target)
    ):
        raise _unsafe_link(name, target, "hard link")
