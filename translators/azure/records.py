"""Multipart bookkeeping of the Azure translator: upload and part records, uploads paging.

An upload is one empty blob at ``namespace.system("uploads", bucket, upload_id)``; each part
one empty blob below it, ``.../<upload_id>/<part:05d>``. Everything lives in their metadata
(one ASCII entry, like :mod:`translators.objectmeta`), so one listing returns whole records.
A part record names its blocks by ``attempt`` and ``blocks`` (a count): the ids follow from
:func:`translators.azure.names.block_id`, which keeps records small for 5 GiB parts.
"""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

from core.checksums import ChecksumAlgorithm, ChecksumType
from translators.azure import names as azure_names
from translators.base import PartInfo, UploadInfo, WriteMetadata

RECORD_KEY: Final = "pagewright"
_UPLOAD_ID: Final = re.compile(r"[0-9a-f]{32}")


def pack(document: Mapping[str, Any]) -> dict[str, str]:
    """Metadata carrying ``document`` (JSON, compressed, URL-safe base64: ASCII only)."""
    raw = zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 6)
    return {RECORD_KEY: base64.urlsafe_b64encode(raw).decode("ascii")}


def unpack(metadata: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The document :func:`pack` stored, or None when the metadata holds none."""
    value = (metadata or {}).get(RECORD_KEY)
    if value is None:
        return None
    return cast(
        dict[str, Any],
        json.loads(zlib.decompress(base64.urlsafe_b64decode(value.encode("ascii")))),
    )


def valid_upload_id(upload_id: str) -> bool:
    """Upload ids are 32 lower-case hex digits; anything else names no upload."""
    return _UPLOAD_ID.fullmatch(upload_id) is not None


def encode_upload(upload: UploadInfo) -> dict[str, str]:
    return pack(
        {
            "k": upload.key,
            "i": upload.initiated.timestamp(),
            "h": upload.metadata.headers,
            "u": upload.metadata.user_metadata,
            "a": upload.checksum_algorithm,
            "t": upload.checksum_type,
        }
    )


def decode_upload(upload_id: str, metadata: Mapping[str, str] | None) -> UploadInfo | None:
    document = unpack(metadata)
    if document is None:
        return None
    return UploadInfo(
        key=document["k"],
        upload_id=upload_id,
        initiated=datetime.fromtimestamp(document["i"], UTC),
        metadata=WriteMetadata(dict(document["h"]), dict(document["u"])),
        checksum_algorithm=cast(ChecksumAlgorithm | None, document["a"]),
        checksum_type=cast(ChecksumType | None, document["t"]),
    )


@dataclass(frozen=True)
class PartRecord:
    """A stored part and where its bytes are: ``blocks`` staged blocks of ``attempt``."""

    part: PartInfo
    attempt: str
    blocks: int

    def block_ids(self, upload_id: str) -> list[str]:
        number = self.part.part_number
        return [
            azure_names.block_id(upload_id, number, self.attempt, i) for i in range(self.blocks)
        ]


def encode_part(record: PartRecord) -> dict[str, str]:
    part = record.part
    modified = part.last_modified.timestamp() if part.last_modified else time.time()
    return pack(
        {
            "n": part.part_number,
            "s": part.size,
            "e": part.etag,
            "c": part.checksums,
            "m": modified,
            "a": record.attempt,
            "b": record.blocks,
        }
    )


def decode_part(metadata: Mapping[str, str] | None) -> PartRecord | None:
    document = unpack(metadata)
    if document is None:
        return None
    part = PartInfo(
        part_number=document["n"],
        size=document["s"],
        etag=document["e"],
        last_modified=datetime.fromtimestamp(document["m"], UTC),
        checksums=dict(document["c"]),
    )
    return PartRecord(part, document["a"], document["b"])
