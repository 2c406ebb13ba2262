"""What the S3 translator keeps beside the bytes, and how it is spelled in the backend.

* The **reserved metadata entry** ``x-amz-meta-pagewright`` (:data:`META_KEY`) holds the
  gateway's view of an object: its stored headers and user metadata exactly as the client
  sent them (S3 metadata must be ASCII and backends change key case), its ETag and
  checksums, and for objects assembled from parts the token of their **manifest**. It is
  stripped from what clients see.
* A **manifest** (``<root>/.pagewright/manifests/<token>``) holds what is known only when an
  upload completes (metadata is fixed when a native multipart upload starts): the ETag, the
  checksums and the part layout. It is written before the native completion, so an object
  that names it is never visible without it.
* A **gateway upload id** is ``<algorithm><type><key tag>.<native upload id>`` plus, after
  the tag, the manifest token: the checksum algorithm and type of the upload travel with the
  id (ListParts does not return them), and the key tag makes an id valid for its key only.
* A **part note** is a zero-byte object whose name carries a part's MD5 and checksums, kept
  when they cannot be read back from the backend's ListParts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from core.checksums import CHECKSUM_ALGORITHMS, ChecksumAlgorithm, ChecksumType
from core.errors import S3Error
from translators.base import STORED_HEADERS, ObjectInfo, PartInfo
from translators.namespace import Location

META_KEY: Final = "pagewright"
#: S3 caps user metadata (keys plus values) at 2 KB.
MAX_METADATA_BYTES: Final = 2048
_TYPES: Final[dict[str, ChecksumType | None]] = {"0": None, "F": "FULL_OBJECT", "C": "COMPOSITE"}
_TOKEN_LENGTH: Final = 16
_TAG_LENGTH: Final = 8


def _pack(document: Mapping[str, Any]) -> str:
    raw = zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 6)
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _unpack(value: str) -> dict[str, Any]:
    try:
        document = json.loads(zlib.decompress(base64.urlsafe_b64decode(value.encode("ascii"))))
    except (ValueError, zlib.error) as error:
        raise S3Error("InternalError", "An object's gateway metadata is corrupt.") from error
    if not isinstance(document, dict):
        raise S3Error("InternalError", "An object's gateway metadata is corrupt.")
    return document


# Object metadata


@dataclass(frozen=True)
class StoredView:
    """The gateway's view of an object as read from its metadata (manifest not yet applied)."""

    info: ObjectInfo
    manifest: str | None  # token of the manifest to apply, for objects assembled from parts


def object_metadata(
    headers: Mapping[str, str],
    user_metadata: Mapping[str, str],
    *,
    etag: str | None = None,
    checksums: Mapping[str, str] | None = None,
    checksum_type: ChecksumType | None = None,
    manifest: str | None = None,
) -> dict[str, str]:
    """The native ``Metadata`` for a new object: the reserved entry, plus the client's user
    metadata as native entries too (for other tools) when it is ASCII and both fit S3's
    2 KB limit."""
    document: dict[str, Any] = {"h": dict(headers), "u": dict(user_metadata)}
    if etag is not None:
        document["e"] = etag
    if checksums:
        document["c"] = dict(checksums)
        document["t"] = checksum_type
    if manifest is not None:
        document["m"] = manifest
    metadata = {META_KEY: _pack(document)}
    native = {
        name.lower(): value
        for name, value in user_metadata.items()
        if name.lower() != META_KEY
        and _plain_ascii(name)
        and " " not in name
        and _plain_ascii(value)
    }
    used = sum(len(k) + len(v) for k, v in (metadata | native).items())
    if len(native) == len(user_metadata) and used <= MAX_METADATA_BYTES:
        metadata |= native
    return metadata


def _plain_ascii(text: str) -> bool:
    """Text a backend returns unchanged in a header: printable ASCII without edge or double
    spaces (HTTP folds them)."""
    return text.isascii() and text.isprintable() and text == text.strip() and "  " not in text


def native_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """boto3 parameters for the stored headers a backend can hold natively (ASCII ones)."""
    names = {
        "content-type": "ContentType",
        "content-encoding": "ContentEncoding",
        "content-disposition": "ContentDisposition",
        "content-language": "ContentLanguage",
        "cache-control": "CacheControl",
    }
    return {
        names[name]: value
        for name, value in headers.items()
        if name in names and value.isascii() and value.isprintable()
    }


def read_object(key: str, response: Mapping[str, Any]) -> StoredView:
    """The gateway's view of a HeadObject/GetObject ``response`` for gateway key ``key``.

    Objects the gateway did not write (no reserved entry) get the backend's ETag, native
    headers and native user metadata.
    """
    metadata = {str(k).lower(): str(v) for k, v in (response.get("Metadata") or {}).items()}
    size = _whole_size(response)
    last_modified = cast(datetime, response["LastModified"])
    backend_etag = unquote(str(response.get("ETag", "")))
    value = metadata.pop(META_KEY, None)
    if value is None:
        headers = {
            name: str(response[field])
            for name, field in (
                ("content-type", "ContentType"),
                ("content-encoding", "ContentEncoding"),
                ("content-disposition", "ContentDisposition"),
                ("content-language", "ContentLanguage"),
                ("cache-control", "CacheControl"),
                ("expires", "ExpiresString"),
            )
            if response.get(field)
        }
        info = ObjectInfo(key, size, backend_etag, last_modified, headers, metadata)
        return StoredView(info, None)
    document = _unpack(value)
    info = ObjectInfo(
        key=key,
        size=size,
        etag=str(document.get("e") or backend_etag),
        last_modified=last_modified,
        headers={k: v for k, v in document.get("h", {}).items() if k in STORED_HEADERS},
        user_metadata=dict(document.get("u", {})),
        checksums=dict(document.get("c", {})),
        checksum_type=cast(ChecksumType | None, document.get("t")),
    )
    manifest = document.get("m")
    return StoredView(info, str(manifest) if manifest else None)


def _whole_size(response: Mapping[str, Any]) -> int:
    content_range = response.get("ContentRange")
    if content_range:
        total = str(content_range).rpartition("/")[2]
        if total.isdigit():
            return int(total)
    return int(response.get("ContentLength") or 0)


def unquote(etag: str) -> str:
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag[1:-1] if len(etag) >= 2 and etag[0] == etag[-1] == '"' else etag


# Manifests


def encode_manifest(info: ObjectInfo, bucket: str) -> bytes:
    """The manifest body: ETag, checksums and parts of an object assembled from parts, and
    the gateway bucket and key it was written for (so a sweep can tell whether that object
    still names it: :func:`manifest_owner`)."""
    document: dict[str, Any] = {"e": info.etag, "s": info.size, "b": bucket, "k": info.key}
    if info.checksums:
        document["c"] = info.checksums
        document["t"] = info.checksum_type
    if info.parts:
        document["p"] = [[p.part_number, p.size, p.etag, p.checksums] for p in info.parts]
    return json.dumps(document, separators=(",", ":")).encode()


def apply_manifest(info: ObjectInfo, body: bytes) -> ObjectInfo:
    """``info`` with the ETag, checksums and parts its manifest records."""
    try:
        document = json.loads(body)
    except ValueError as error:
        raise S3Error("InternalError", "An object's manifest is corrupt.") from error
    parts = tuple(PartInfo(n, s, e, None, dict(c)) for n, s, e, c in document.get("p", []))
    return ObjectInfo(
        key=info.key,
        size=info.size,
        etag=str(document["e"]),
        last_modified=info.last_modified,
        headers=info.headers,
        user_metadata=info.user_metadata,
        checksums=dict(document.get("c", {})),
        checksum_type=cast(ChecksumType | None, document.get("t")),
        parts=parts,
        version_id=info.version_id,
    )


def manifest_owner(body: bytes) -> tuple[str, str] | None:
    """The (gateway bucket, key) a manifest was written for; None for a manifest written
    before manifests recorded it, or one that cannot be read."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    bucket, key = document.get("b"), document.get("k")
    if isinstance(bucket, str) and isinstance(key, str):
        return bucket, key
    return None


def new_token() -> str:
    """A random manifest token."""
    return os.urandom(_TOKEN_LENGTH // 2).hex()


# Upload ids


@dataclass(frozen=True)
class UploadId:
    """A gateway upload id, decoded."""

    algorithm: ChecksumAlgorithm | None
    checksum_type: ChecksumType | None
    tag: str
    token: str
    native: str

    def __str__(self) -> str:
        return f"{self.prefix()}.{self.native}"

    def prefix(self) -> str:
        algorithm = (
            "0" if self.algorithm is None else str(CHECKSUM_ALGORITHMS.index(self.algorithm) + 1)
        )
        kind = {None: "0", "FULL_OBJECT": "F", "COMPOSITE": "C"}[self.checksum_type]
        return f"{algorithm}{kind}{self.tag}{self.token}"


def key_tag(location: Location) -> str:
    """A short digest of a backend location: an upload id is valid for its key only."""
    digest = hashlib.sha256(f"{location.container}\0{location.name}".encode()).hexdigest()
    return digest[:_TAG_LENGTH]


def parse_upload_id(value: str, location: Location) -> UploadId:
    """Decode a gateway upload id; ``NoSuchUpload`` if malformed or made for another key."""
    prefix, dot, native = value.partition(".")
    length = 2 + _TAG_LENGTH + _TOKEN_LENGTH
    if not dot or not native or len(prefix) != length or prefix[1] not in _TYPES:
        raise S3Error("NoSuchUpload", UploadId=value)
    code = prefix[0]
    if not code.isdigit() or int(code) > len(CHECKSUM_ALGORITHMS):
        raise S3Error("NoSuchUpload", UploadId=value)
    tag, token = prefix[2 : 2 + _TAG_LENGTH], prefix[2 + _TAG_LENGTH :]
    if tag != key_tag(location):
        raise S3Error("NoSuchUpload", UploadId=value)
    algorithm = None if code == "0" else CHECKSUM_ALGORITHMS[int(code) - 1]
    return UploadId(algorithm, _TYPES[prefix[1]], tag, token, native)


def native_upload_hash(native: str) -> str:
    return hashlib.sha256(native.encode()).hexdigest()[:32]


# Part notes


def part_note_name(prefix: str, part: PartInfo, native_etag: str) -> str:
    """``<prefix><number>.<packed [native etag, md5, checksums]>`` (sorts by part number)."""
    packed = base64.urlsafe_b64encode(
        json.dumps([native_etag, part.etag, part.checksums], separators=(",", ":")).encode()
    ).decode("ascii")
    return f"{prefix}{part.part_number:05d}.{packed}"


def parse_part_note(prefix: str, name: str) -> tuple[int, str, str, dict[str, str]] | None:
    """(part number, native ETag, MD5, checksums) of a part note, None if not one."""
    number, dot, packed = name[len(prefix) :].partition(".")
    if not dot or not number.isdigit():
        return None
    try:
        native_etag, md5, sums = json.loads(base64.urlsafe_b64decode(packed.encode("ascii")))
    except ValueError:
        return None
    return int(number), str(native_etag), str(md5), {str(k): str(v) for k, v in sums.items()}


def part_note_after(prefix: str, part_number: int) -> str:
    """A ``StartAfter`` that skips every note of parts numbered up to ``part_number``."""
    return f"{prefix}{part_number:05d}~"
