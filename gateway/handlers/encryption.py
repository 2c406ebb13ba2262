"""Bucket default encryption: Put/Get/DeleteBucketEncryption.

A site's default is kept as two site-policy overrides (``default_encryption``,
``default_kms_key_id``), so it lives in the catalog and in the site's state record like any
other site state, and :class:`policy.encryption.EncryptingBackend` applies it to every new
object whose request asks for no encryption of its own. The configuration holds one rule:
``ApplyServerSideEncryptionByDefault`` with ``SSEAlgorithm`` ``AES256`` or ``aws:kms`` (and
then optionally a ``KMSMasterKeyID`` of the gateway's key ring). ``aws:kms:dsse`` and
``BucketKeyEnabled`` true are refused with 501; anything else malformed with S3's errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from core.errors import S3Error
from core.sse import AES256, AWS_KMS
from gateway import s3xml
from gateway.handlers.common import site_policies
from gateway.request import S3Request
from gateway.responses import Reply, empty_reply, xml_reply

E, T, G = s3xml.element, s3xml.text, s3xml.group
_FIELDS = ("default_encryption", "default_kms_key_id")


@dataclass(frozen=True)
class DefaultEncryption:
    """A bucket's default: ``algorithm`` (``AES256`` or ``aws:kms``) and a KMS key id."""

    algorithm: str
    kms_key_id: str | None = None


def _elements(node: etree._Element) -> list[etree._Element]:
    return [c for c in node if isinstance(c.tag, str)]


def parse_encryption(body: bytes, kms_key_ids: tuple[str, ...]) -> DefaultEncryption:
    """A ``ServerSideEncryptionConfiguration`` -> its one default rule (module docstring).

    ``MalformedXML`` for a document of another shape, ``InvalidArgument`` for an unknown
    algorithm or a key id without ``aws:kms``, ``KMS.NotFoundException`` for a key id the
    key ring (``kms_key_ids``) does not hold.
    """
    root = s3xml.parse(body)
    if s3xml.local_name(root) != "ServerSideEncryptionConfiguration":
        raise S3Error("MalformedXML")
    rules = [n for n in _elements(root) if s3xml.local_name(n) == "Rule"]
    if len(rules) != 1 or len(_elements(root)) != 1:
        raise S3Error("MalformedXML", "The configuration must hold exactly one Rule.")
    rule = rules[0]
    apply = None
    for node in _elements(rule):
        name = s3xml.local_name(node)
        if name == "ApplyServerSideEncryptionByDefault":
            apply = node
        elif name == "BucketKeyEnabled":
            value = (node.text or "").strip().lower()
            if value not in ("true", "false"):
                raise S3Error("MalformedXML", "BucketKeyEnabled must be true or false.")
            if value == "true":
                raise S3Error("NotImplemented", "S3 Bucket Keys for SSE-KMS are not implemented.")
        else:
            raise S3Error("MalformedXML", f"Unexpected element {name} in Rule.")
    if apply is None:
        raise S3Error("MalformedXML", "The Rule needs ApplyServerSideEncryptionByDefault.")
    algorithm = s3xml.child_text(apply, "SSEAlgorithm")
    key_id = s3xml.child_text(apply, "KMSMasterKeyID")
    for node in _elements(apply):
        if s3xml.local_name(node) not in ("SSEAlgorithm", "KMSMasterKeyID"):
            raise S3Error("MalformedXML", f"Unexpected element {s3xml.local_name(node)}.")
    if algorithm is None:
        raise S3Error("MalformedXML", "ApplyServerSideEncryptionByDefault needs SSEAlgorithm.")
    algorithm = algorithm.strip()
    key_id = key_id.strip() if key_id and key_id.strip() else None
    if algorithm == "aws:kms:dsse":
        raise S3Error("NotImplemented", "DSSE-KMS (aws:kms:dsse) is not implemented.")
    if algorithm not in (AES256, AWS_KMS):
        raise S3Error(
            "InvalidArgument",
            "The encryption method specified is not supported",
            ArgumentName="SSEAlgorithm",
            ArgumentValue=algorithm,
        )
    if algorithm == AES256 and key_id is not None:
        raise S3Error(
            "InvalidArgument",
            "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms",
            ArgumentName="ApplyServerSideEncryptionByDefault",
        )
    if algorithm == AWS_KMS:
        if key_id is None and not kms_key_ids:
            raise S3Error(
                "KMS.NotFoundException",
                "SSE-KMS needs a key id, and the gateway's key ring (kms_key_ids) is empty.",
            )
        if key_id is not None and key_id not in kms_key_ids:
            raise S3Error("KMS.NotFoundException", f"Invalid keyId {key_id}")
    return DefaultEncryption(algorithm, key_id)


def render_encryption(default: DefaultEncryption) -> etree._Element:
    """The ``ServerSideEncryptionConfiguration`` S3 answers for ``default``."""
    return E(
        "ServerSideEncryptionConfiguration",
        G(
            "Rule",
            [
                G(
                    "ApplyServerSideEncryptionByDefault",
                    [T("SSEAlgorithm", default.algorithm), T("KMSMasterKeyID", default.kms_key_id)],
                ),
                T("BucketKeyEnabled", False),
            ],
        ),
    )


async def get_bucket_encryption(req: S3Request) -> Reply:
    """GetBucketEncryption: the default, or ServerSideEncryptionConfigurationNotFoundError."""
    policies = await site_policies(req)
    overrides = await policies.overrides(req.bucket)
    algorithm = overrides.get("default_encryption")
    if algorithm is None:
        raise S3Error("ServerSideEncryptionConfigurationNotFoundError", BucketName=req.bucket)
    return xml_reply(
        render_encryption(DefaultEncryption(str(algorithm), overrides.get("default_kms_key_id")))
    )


async def put_bucket_encryption(req: S3Request) -> Reply:
    """PutBucketEncryption: store the default (it applies to objects written from now on)."""
    policies = await site_policies(req)
    default = parse_encryption(await req.read_body(), req.settings.kms_key_ids)
    overrides = await policies.overrides(req.bucket)
    overrides["default_encryption"] = default.algorithm
    overrides["default_kms_key_id"] = default.kms_key_id
    await policies.set_overrides(req.bucket, overrides)
    return empty_reply()


async def delete_bucket_encryption(req: S3Request) -> Reply:
    """DeleteBucketEncryption: drop the default (204 even if none); objects stay as stored."""
    policies = await site_policies(req)
    overrides = await policies.overrides(req.bucket)
    if any(overrides.pop(name, None) is not None for name in _FIELDS):
        await policies.set_overrides(req.bucket, overrides)
    return empty_reply(204)
