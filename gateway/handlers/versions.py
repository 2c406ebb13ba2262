"""Versioning at the S3 surface: the bucket's state, version ids in requests and replies,
and ListObjectVersions (the rules themselves are ``translators.versioning``'s).

A request naming a version (``versionId``) needs the version action of its Operation too
(``s3:GetObjectVersion`` to read one, ``s3:DeleteObjectVersion`` to delete one), checked
here on top of the Operation's own action: stricter than AWS, which asks for the version
action alone.
"""

from __future__ import annotations

from collections.abc import Callable

from core.errors import S3Error
from gateway import s3xml
from gateway.handlers.common import int_param, owner_id
from gateway.handlers.listing import MAX_KEYS, url_encoder
from gateway.request import S3Request
from gateway.responses import Reply, empty_reply, xml_reply
from gateway.s3xml import iso8601
from gateway.xmlwriter import XmlWriter, escape
from translators.base import ObjectInfo
from translators.versioning import NULL_VERSION, DeleteOutcome, Version, VersionsQuery

E, T = s3xml.element, s3xml.text
_STATES = ("Enabled", "Suspended")
#: The longest version id accepted in a request (the translators' are 32 characters).
MAX_VERSION_ID = 1024


def requested_version(req: S3Request, value: str | None = None) -> str | None:
    """The ``versionId`` a request names (or ``value``), None when it names none;
    ``InvalidArgument`` for an empty or absurdly long one."""
    version = req.query.get("versionId") if value is None else value
    if version is None:
        return None
    if not version or len(version) > MAX_VERSION_ID or not version.isprintable():
        raise S3Error(
            "InvalidArgument",
            "Invalid version id specified",
            ArgumentName="versionId",
            ArgumentValue=version,
        )
    return version


def version_headers(info: ObjectInfo) -> list[tuple[str, str]]:
    """``x-amz-version-id`` of an object of a bucket ever versioned (none otherwise)."""
    return [] if info.version_id is None else [("x-amz-version-id", info.version_id)]


def delete_headers(outcome: DeleteOutcome) -> list[tuple[str, str]]:
    """The headers of a DeleteObject reply: the version removed or the delete marker made."""
    headers = [] if outcome.version_id is None else [("x-amz-version-id", outcome.version_id)]
    if outcome.delete_marker:
        headers.append(("x-amz-delete-marker", "true"))
    return headers


async def require_latest(req: S3Request) -> None:
    """For the sub-resources kept per key, not per version (tags, attributes): a
    ``versionId`` must name the key's latest object, else ``NoSuchVersion``."""
    version = requested_version(req)
    if version is None:
        return
    await req.require("s3:GetObjectVersion", req.bucket, req.key)
    latest = (await req.backend.head_object(req.ctx, req.bucket, req.key)).version_id
    if version != (latest or NULL_VERSION):
        raise S3Error(
            "NoSuchVersion",
            "Only the latest version of an object has this sub-resource here.",
            Key=req.key,
            VersionId=version,
        )


# Bucket state


async def get_bucket_versioning(req: S3Request) -> Reply:
    status = await req.backend.get_bucket_versioning(req.ctx, req.bucket)
    root = E("VersioningConfiguration", T("Status", status))
    return xml_reply(root)


async def put_bucket_versioning(req: S3Request) -> Reply:
    """``Status`` Enabled or Suspended. ``MfaDelete`` Enabled needs MFA devices this
    gateway does not have: refused, never accepted and ignored."""
    root = s3xml.parse(await req.read_body())
    if s3xml.local_name(root) != "VersioningConfiguration":
        raise S3Error("MalformedXML")
    status = (s3xml.child_text(root, "Status") or "").strip()
    mfa = (s3xml.child_text(root, "MfaDelete") or "Disabled").strip()
    if mfa not in ("Enabled", "Disabled"):
        raise S3Error("MalformedXML")
    if mfa == "Enabled":
        raise S3Error("NotImplemented", "MFA delete is not supported by this gateway.")
    if status not in _STATES:
        raise S3Error("MalformedXML")
    await req.backend.put_bucket_versioning(req.ctx, req.bucket, status)  # type: ignore[arg-type]
    return empty_reply(200)


# ListObjectVersions


async def list_object_versions(req: S3Request) -> Reply:
    """Versions and delete markers in key order, each key's newest first."""
    encode = url_encoder(req)
    query = VersionsQuery(
        prefix=req.query.get("prefix", ""),
        delimiter=req.query.get("delimiter", ""),
        key_marker=req.query.get("key-marker", ""),
        version_id_marker=req.query.get("version-id-marker", ""),
        max_keys=int_param(req.query, "max-keys", MAX_KEYS, 0, MAX_KEYS),
    )
    page = await req.backend.list_versions(req.ctx, req.bucket, query)
    out = XmlWriter("ListVersionsResult")
    out.leaf("Name", req.bucket)
    out.leaf("Prefix", encode(query.prefix))
    out.leaf("KeyMarker", encode(query.key_marker))
    out.leaf("VersionIdMarker", query.version_id_marker)
    if page.next_key_marker is not None:
        out.leaf("NextKeyMarker", encode(page.next_key_marker))
        out.leaf("NextVersionIdMarker", page.next_version_id_marker)
    out.leaf("MaxKeys", query.max_keys)
    if query.delimiter:
        out.leaf("Delimiter", encode(query.delimiter))
    out.leaf("EncodingType", req.query.get("encoding-type"))
    out.leaf("IsTruncated", page.next_key_marker is not None)
    owner = _owner(req)
    for version in page.versions:
        out.raw(_entry(version, encode, owner))
    for prefix in page.common_prefixes:
        out.open("CommonPrefixes")
        out.leaf("Prefix", encode(prefix))
        out.close("CommonPrefixes")
    return Reply(200, [("Content-Type", "application/xml")], out.to_bytes())


def _owner(req: S3Request) -> str:
    ident, name = owner_id(req.ctx.principal), escape(req.ctx.principal)
    return f"<Owner><ID>{ident}</ID><DisplayName>{name}</DisplayName></Owner>"


def _entry(version: Version, encode: Callable[[str], str], owner: str) -> str:
    common = (
        f"<Key>{escape(encode(version.key))}</Key>"
        f"<VersionId>{escape(version.version_id)}</VersionId>"
        f"<IsLatest>{'true' if version.is_latest else 'false'}</IsLatest>"
        f"<LastModified>{iso8601(version.last_modified)}</LastModified>"
    )
    info = version.info
    if info is None:
        return f"<DeleteMarker>{common}{owner}</DeleteMarker>"
    algorithm = next(iter(info.checksums), None)
    checksum = f"<ChecksumAlgorithm>{algorithm}</ChecksumAlgorithm>" if algorithm else ""
    if algorithm and info.checksum_type:
        checksum += f"<ChecksumType>{info.checksum_type}</ChecksumType>"
    return (
        f"<Version>{common}<ETag>&quot;{escape(info.etag)}&quot;</ETag>{checksum}"
        f"<Size>{info.size}</Size><StorageClass>STANDARD</StorageClass>{owner}</Version>"
    )
