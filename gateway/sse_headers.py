"""The ``x-amz-server-side-encryption*`` request headers: parsed, or refused as S3 refuses them.

Nothing is accepted and ignored. :func:`check_allowed` refuses any such header on an
operation that does not take it (``InvalidArgument``) and any the gateway does not know or
implement (``NotImplemented``): the encryption context (``-context``), S3 Bucket Keys
(``-bucket-key-enabled: true``) and DSSE-KMS (``aws:kms:dsse``). The operations that take
them parse them with :func:`write_request` (PutObject, CopyObject, CreateMultipartUpload),
:func:`customer_key` (SSE-C on reads, parts and copies) and render an object's encryption
with :func:`response_headers`.

Errors, as S3 sends them: an unknown ``x-amz-server-side-encryption`` value and a KMS key id
without ``aws:kms`` are ``InvalidArgument``; SSE-C with an algorithm other than AES256 is
``InvalidEncryptionAlgorithmError``; a missing SSE-C header, a key that is not 32 bytes of
base64, a key MD5 that does not match the key, and SSE-C combined with another mode are
``InvalidArgument``; SSE-C over plain HTTP is ``InvalidRequest`` unless the gateway is
configured to allow it (``sse_c_require_tls = false``, for tests). Key bytes never appear
in an error or a log line.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Final

from core.errors import S3Error
from core.sse import AES256, AWS_KMS, CUSTOMER_ALGORITHM, SSE_C, CustomerKey, EncryptionInfo
from core.sse import EncryptionRequest as Request
from gateway.routing import Operation

SSE: Final = "x-amz-server-side-encryption"
KMS_KEY_ID: Final = "x-amz-server-side-encryption-aws-kms-key-id"
CONTEXT: Final = "x-amz-server-side-encryption-context"
BUCKET_KEY: Final = "x-amz-server-side-encryption-bucket-key-enabled"
CUSTOMER: Final = "x-amz-server-side-encryption-customer-"
COPY_SOURCE_CUSTOMER: Final = "x-amz-copy-source-server-side-encryption-customer-"
_CUSTOMER_PARTS: Final = ("algorithm", "key", "key-md5")

_O = Operation
#: Operations that create an object and so take the write headers.
_WRITES: Final = frozenset({_O.PutObject, _O.CopyObject, _O.CreateMultipartUpload})
#: Operations that take the SSE-C headers (a key to write with, or to read with).
_CUSTOMER_OPS: Final = _WRITES | {
    _O.UploadPart,
    _O.UploadPartCopy,
    _O.GetObject,
    _O.HeadObject,
    _O.CompleteMultipartUpload,
    _O.GetObjectAttributes,
}
_COPIES: Final = frozenset({_O.CopyObject, _O.UploadPartCopy})


def _invalid(message: str, name: str, value: str | None = None) -> S3Error:
    if value is None:
        return S3Error("InvalidArgument", message, ArgumentName=name)
    return S3Error("InvalidArgument", message, ArgumentName=name, ArgumentValue=value)


def check_allowed(operation: Operation, headers: Mapping[str, str]) -> None:
    """Refuse every encryption header ``operation`` does not take, and those the gateway
    does not implement (see the module docstring). Header names are lower case."""
    for name in headers:
        if name.startswith(COPY_SOURCE_CUSTOMER):
            part = name[len(COPY_SOURCE_CUSTOMER) :]
            if part not in _CUSTOMER_PARTS:
                raise S3Error("NotImplemented", f"The header {name} is not implemented.")
            if operation not in _COPIES:
                raise _invalid(f"The header {name} is not valid for {operation.value}.", name)
        elif name.startswith(CUSTOMER):
            if name[len(CUSTOMER) :] not in _CUSTOMER_PARTS:
                raise S3Error("NotImplemented", f"The header {name} is not implemented.")
            if operation not in _CUSTOMER_OPS:
                raise _invalid(f"The header {name} is not valid for {operation.value}.", name)
        elif name.startswith(SSE):
            if name not in (SSE, KMS_KEY_ID, CONTEXT, BUCKET_KEY):
                raise S3Error("NotImplemented", f"The header {name} is not implemented.")
            if operation not in _WRITES:
                raise _invalid(f"The {name} header is not supported for {operation.value}.", name)


def write_request(headers: Mapping[str, str], *, secure: bool, require_tls: bool) -> Request | None:
    """The encryption a write asks for (None: none asked; the bucket default may apply).

    Checks the headers together: a mode, a KMS key id only with ``aws:kms``, SSE-C alone.
    """
    raw = headers.get(SSE)
    key = customer_key(headers, secure=secure, require_tls=require_tls)
    context = headers.get(CONTEXT)
    if context is not None:
        raise S3Error(
            "NotImplemented",
            f"The {CONTEXT} header (an SSE-KMS encryption context) is not implemented.",
        )
    bucket_key = headers.get(BUCKET_KEY)
    if bucket_key is not None:
        word = bucket_key.strip().lower()
        if word not in ("true", "false"):
            raise _invalid("The bucket key setting must be true or false.", BUCKET_KEY, bucket_key)
        if word == "true":
            raise S3Error("NotImplemented", "S3 Bucket Keys for SSE-KMS are not implemented.")
    kms_key_id = headers.get(KMS_KEY_ID)
    if key is not None:
        if raw is not None:
            raise _invalid(
                "Server Side Encryption with Customer provided key is incompatible with the "
                "encryption method specified",
                SSE,
                raw,
            )
        if kms_key_id is not None:
            raise _invalid(
                "Server Side Encryption with Customer provided key is incompatible with the "
                "encryption method specified",
                KMS_KEY_ID,
            )
        return Request(SSE_C, customer_key=key)
    if raw is None:
        if kms_key_id is not None:
            raise _invalid(
                "Server Side Encryption with AWS KMS managed key requires HTTP header "
                f"{SSE} : aws:kms",
                KMS_KEY_ID,
                kms_key_id,
            )
        return None
    mode = raw.strip()
    if mode == "aws:kms:dsse":
        raise S3Error("NotImplemented", "DSSE-KMS (aws:kms:dsse) is not implemented.")
    if mode == AES256:
        if kms_key_id is not None:
            raise _invalid(
                "Server Side Encryption with AWS KMS managed key requires HTTP header "
                f"{SSE} : aws:kms",
                KMS_KEY_ID,
                kms_key_id,
            )
        return Request(AES256)
    if mode == AWS_KMS:
        return Request(AWS_KMS, kms_key_id=(kms_key_id.strip() or None) if kms_key_id else None)
    raise _invalid("The encryption method specified is not supported", SSE, raw)


def customer_key(
    headers: Mapping[str, str],
    *,
    secure: bool,
    require_tls: bool,
    prefix: str = CUSTOMER,
) -> CustomerKey | None:
    """The SSE-C key of the headers under ``prefix`` (the copy source's with
    :data:`COPY_SOURCE_CUSTOMER`), checked: all three headers, AES256, 32 bytes, MD5."""
    algorithm = headers.get(prefix + "algorithm")
    raw_key = headers.get(prefix + "key")
    raw_md5 = headers.get(prefix + "key-md5")
    if algorithm is None and raw_key is None and raw_md5 is None:
        return None
    if require_tls and not secure:
        raise S3Error(
            "InvalidRequest",
            "Requests specifying Server Side Encryption with Customer provided keys must be "
            "made over a secure connection.",
        )
    if algorithm is None:
        raise _invalid(
            "Requests specifying Server Side Encryption with Customer provided keys must "
            "provide a valid encryption algorithm.",
            prefix + "algorithm",
        )
    if algorithm.strip() != CUSTOMER_ALGORITHM:
        raise S3Error(
            "InvalidEncryptionAlgorithmError",
            ArgumentName=prefix + "algorithm",
            ArgumentValue=algorithm,
        )
    if raw_key is None:
        raise _invalid(
            "Requests specifying Server Side Encryption with Customer provided keys must "
            "provide an appropriate secret key.",
            prefix + "key",
        )
    if raw_md5 is None:
        raise _invalid(
            "Requests specifying Server Side Encryption with Customer provided keys must "
            "provide the client calculated MD5 of the secret key.",
            prefix + "key-MD5",
        )
    try:
        key = base64.b64decode(raw_key.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise _invalid("The secret key was invalid for the specified algorithm.", prefix + "key")
    md5 = CustomerKey.md5_of(key)
    if not CustomerKey(key, md5).matches(raw_md5.strip()):
        raise _invalid(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
            prefix + "key",
        )
    return CustomerKey(key, md5)


def response_headers(info: EncryptionInfo | None) -> list[tuple[str, str]]:
    """The headers S3 sends about an object's encryption (none for a plain object)."""
    if info is None:
        return []
    if info.mode == SSE_C:
        return [
            ("x-amz-server-side-encryption-customer-algorithm", CUSTOMER_ALGORITHM),
            ("x-amz-server-side-encryption-customer-key-MD5", info.customer_key_md5 or ""),
        ]
    headers: list[tuple[str, str]] = [(SSE, info.mode)]
    if info.mode == AWS_KMS and info.kms_key_id:
        headers.append((KMS_KEY_ID, info.kms_key_id))
    return headers
