"""POST Object: a browser's HTML form upload to the bucket URL.

The request carries no signature of its own; its form does (``gateway.post_auth``), so the
app lets it through the door unsigned and this handler decides, in this order:

1. the body must be ``multipart/form-data`` (412 ``PreconditionFailed``); the fields before
   the ``file`` part are read (``gateway.post_form``), the file is not yet;
2. the form's signature names the principal (anonymous when unsigned);
3. the policy, when there is one, must hold: not expired, every condition met, no field it
   does not name (``gateway.post_policy``); a signed form must carry one;
4. ``key`` (with ``${filename}`` replaced by the file's name) must be a valid key, and the
   principal must be allowed ``s3:PutObject`` on it (the same decision as a PutObject);
5. the file streams into the store through PutObject's own path
   (:func:`gateway.handlers.objects.store_object`: ACL, metadata and conditions from the
   form's fields as if they were headers, then the policy stack: quota, validation, catalog),
   with the policy's ``content-length-range`` and the size limit enforced as it flows.

The answer follows the form: ``success_action_redirect`` (or ``redirect``) answers 303 to
that URL with ``bucket``, ``key`` and ``etag`` added to its query; else
``success_action_status`` 200 or 201 (with S3's ``PostResponse`` document), 204 by default.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from core import checksums
from core.context import RequestContext
from core.errors import S3Error
from gateway import s3xml, sse_headers
from gateway.handlers.objects import store_object
from gateway.handlers.versions import version_headers
from gateway.payload import checksum_values
from gateway.post_auth import FormAuthenticator
from gateway.post_form import FormFilePayload, FormReader, boundary_of
from gateway.post_policy import check_form, parse_post_policy
from gateway.request import MAX_KEY_BYTES, Address, S3Request
from gateway.responses import Reply, empty_reply, quote_etag, xml_reply
from gateway.sigv4 import AuthResult, PayloadMode
from gateway.tagging import TAGGING_HEADER, parse_tagging
from translators.base import ObjectInfo

E, T = s3xml.element, s3xml.text
#: Form fields that become the object's headers, as PutObject would receive them.
_HEADER_FIELDS: Final = (
    "cache-control",
    "content-type",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
)
#: Form fields of the signature itself, never passed on as headers.
_SIGNATURE_FIELDS: Final = frozenset(
    {"x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature", "x-amz-security-token"}
)


def _authenticator(req: S3Request) -> FormAuthenticator:
    assert req.services is not None
    assert req.services.forms is not None
    return req.services.forms


async def post_object(req: S3Request) -> Reply:
    form = FormReader(aiter(req.source), boundary_of(req.headers.get("content-type")))
    fields = await form.fields()
    assert form.file is not None
    now = datetime.now(UTC)
    signer = await _authenticator(req).authenticate(fields, now)
    policy = parse_post_policy(fields["policy"]) if fields.get("policy") else None
    if policy is not None:
        check_form(policy, fields, req.bucket, now)
    key = _key(fields, form.file.filename)
    identity = signer.credential.identity
    if req.access is not None:
        acl = {"s3:x-amz-acl": fields["acl"]} if "acl" in fields else {}
        req.access.signed_by(identity, signer.signature, acl)
        await req.access.require("s3:PutObject", req.bucket, key)
    headers = _object_headers(fields)
    upload = replace(
        req,
        address=Address(req.bucket, key),
        headers=headers,
        ctx=RequestContext(req.ctx.request_id, signer.credential.principal),
        auth=AuthResult(signer.credential, PayloadMode.UNSIGNED, None, None, presigned=False),
    )
    low, high = policy.length_range if policy and policy.length_range else (0, None)

    expected = form_checksum(fields)

    def payload() -> FormFilePayload:
        return FormFilePayload(
            form.file_chunks(),
            minimum=low,
            maximum=high,
            limit=req.settings.max_object_size,
            expected=expected,
        )

    info = await store_object(upload, payload)
    return _answer(req, fields, key, info)


def form_checksum(fields: dict[str, str]) -> tuple[str, str] | None:
    """The form's ``x-amz-checksum-<algorithm>`` field as (algorithm, value), checked to be
    one well-formed value (and to match ``x-amz-checksum-algorithm`` when that is given)."""
    values = checksum_values(fields)
    if not values:
        if "x-amz-checksum-algorithm" in fields:
            raise S3Error(
                "InvalidRequest", "x-amz-checksum-algorithm needs its x-amz-checksum- field."
            )
        return None
    if len(values) > 1:
        raise S3Error(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    name, value = next(iter(values.items()))
    algorithm = checksums.parse_algorithm(name)
    named = fields.get("x-amz-checksum-algorithm")
    if named is not None and checksums.parse_algorithm(named) != algorithm:
        raise S3Error(
            "InvalidRequest",
            f"x-amz-checksum-algorithm {named!r} does not name the form's checksum field.",
        )
    checksums.decode(algorithm, value)
    return algorithm, value


def _key(fields: dict[str, str], filename: str) -> str:
    key = fields.get("key")
    if key is None:
        raise S3Error(
            "InvalidArgument",
            "Bucket POST must contain a field named 'key'.  If it is specified, please check "
            "the order of the fields.",
            ArgumentName="key",
            ArgumentValue="",
        )
    key = key.replace("${filename}", filename)
    if not key:
        raise S3Error("InvalidArgument", "The key must not be empty.", ArgumentName="key")
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", Size=str(size), MaxSizeAllowed=str(MAX_KEY_BYTES))
    return key


def _object_headers(fields: dict[str, str]) -> dict[str, str]:
    """The form's fields PutObject reads as headers: standard ones, ``acl`` as
    ``x-amz-acl``, ``tagging`` (a ``Tagging`` XML document, as S3's form takes it) as
    ``x-amz-tagging``, and every ``x-amz-*`` field but the signature's."""
    headers: dict[str, str] = {n: fields[n] for n in _HEADER_FIELDS if n in fields}
    if "acl" in fields:
        headers["x-amz-acl"] = fields["acl"]
    if "tagging" in fields:
        tags = parse_tagging(fields["tagging"].encode("utf-8"), "object")
        headers[TAGGING_HEADER] = urlencode(tags, quote_via=quote)
    for name, value in fields.items():
        if not name.startswith("x-amz-") or name in _SIGNATURE_FIELDS:
            continue
        if name.startswith("x-amz-checksum-"):
            continue  # the file's checksum: form_checksum
        headers[name] = value
    return headers


def _answer(req: S3Request, fields: dict[str, str], key: str, info: ObjectInfo) -> Reply:
    location = _object_url(req, key)
    etag = info.etag
    headers = [
        ("ETag", quote_etag(etag)),
        ("Location", location),
        *sse_headers.response_headers(info.encryption),
        *version_headers(info),
    ]
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect:
        target = urlsplit(redirect)
        if target.scheme in ("http", "https") and target.netloc:
            added = urlencode({"bucket": req.bucket, "key": key, "etag": quote_etag(etag)})
            query = f"{target.query}&{added}" if target.query else added
            url = urlunsplit((target.scheme, target.netloc, target.path, query, target.fragment))
            return empty_reply(303, [headers[0], ("Location", url), *headers[2:]])
    status = fields.get("success_action_status", "").strip()
    if status == "201":
        document = E(
            "PostResponse",
            T("Location", location),
            T("Bucket", req.bucket),
            T("Key", key),
            T("ETag", quote_etag(etag)),
        )
        return xml_reply(document, 201, headers)
    return empty_reply(200 if status == "200" else 204, headers)


def _object_url(req: S3Request, key: str) -> str:
    scheme = "https" if req.settings.tls_cert_file is not None else "http"
    host = req.headers.get("host", "")
    if req.address.virtual_host:
        return f"{scheme}://{host}/{quote(key)}"
    return f"{scheme}://{host}/{quote(req.bucket)}/{quote(key)}"
