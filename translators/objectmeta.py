"""S3 object semantics kept with a blob in stores that lack them (Azure Blob, GCS).

The gateway computes S3's ETag (MD5, or ``<md5 of part md5s>-N``), checksums and part
layout itself, and keeps them with the blob in ONE metadata entry, :data:`META_KEY`, whose
value is ASCII (base64 of compressed JSON), so it survives Azure's rules for metadata
(identifier keys, ASCII values) and GCS's alike. Stored headers (Content-Type, ...) and user
metadata travel in it too; translators additionally set the store's native properties so
other tools see a sensible Content-Type.

Parts: the full list (sizes, ETags, checksums) is kept when it fits :data:`MAX_PARTS_BYTES`;
otherwise only the sizes, run-length encoded (S3 clients upload equal-sized parts), which is
what ``GetObject?partNumber`` needs; per-part ETags and checksums are then not available.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from core.checksums import ChecksumType
from translators.base import ObjectInfo, PartInfo

META_KEY = "pagewright"
MAX_PARTS_BYTES = 3000


def encode(info: ObjectInfo) -> dict[str, str]:
    """The metadata entries that carry ``info``'s S3 semantics (key, size and time excluded)."""
    document: dict[str, Any] = {"e": info.etag, "h": info.headers, "u": info.user_metadata}
    if info.checksums:
        document["c"] = info.checksums
        document["t"] = info.checksum_type
    if info.parts:
        full = [[p.part_number, p.size, p.etag, p.checksums] for p in info.parts]
        if len(json.dumps(full)) <= MAX_PARTS_BYTES:
            document["p"] = full
        else:
            document["r"] = _run_lengths([p.size for p in info.parts])
    raw = zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 6)
    return {META_KEY: base64.urlsafe_b64encode(raw).decode("ascii")}


def decode(
    metadata: Mapping[str, str] | None,
    *,
    key: str,
    size: int,
    last_modified: datetime,
    fallback_etag: str = "",
    fallback_headers: Mapping[str, str] | None = None,
) -> ObjectInfo:
    """The ObjectInfo of a blob; a blob written by another tool (no :data:`META_KEY`) gets
    ``fallback_etag`` (e.g. the store's MD5) and its native headers."""
    value = (metadata or {}).get(META_KEY)
    if value is None:
        return ObjectInfo(key, size, fallback_etag, last_modified, dict(fallback_headers or {}))
    document = json.loads(zlib.decompress(base64.urlsafe_b64decode(value.encode("ascii"))))
    parts: tuple[PartInfo, ...] = ()
    if "p" in document:
        parts = tuple(PartInfo(n, s, e, None, dict(c)) for n, s, e, c in document["p"])
    elif "r" in document:
        sizes = [s for s, count in document["r"] for _ in range(count)]
        parts = tuple(PartInfo(n, s, "") for n, s in enumerate(sizes, 1))
    return ObjectInfo(
        key=key,
        size=size,
        etag=document["e"],
        last_modified=last_modified,
        headers=dict(document.get("h", {})),
        user_metadata=dict(document.get("u", {})),
        checksums=dict(document.get("c", {})),
        checksum_type=cast(ChecksumType | None, document.get("t")),
        parts=parts,
    )


def _run_lengths(sizes: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for size in sizes:
        if runs and runs[-1][0] == size:
            runs[-1][1] += 1
        else:
            runs.append([size, 1])
    return runs
