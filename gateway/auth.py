"""Which signature a request carries, and the verifier for it.

SigV4 (``Authorization: AWS4-HMAC-SHA256 ...`` or ``X-Amz-Algorithm`` in the query) goes to
:mod:`gateway.sigv4`; SigV2 (``Authorization: AWS key:sig`` or ``AWSAccessKeyId`` /
``Signature`` in the query) to :mod:`gateway.sigv2`. Everything else, anonymous requests
included, is left to :func:`gateway.sigv4.authenticate`, which refuses it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from core.errors import S3Error
from gateway.sigv2 import authenticate_v2
from gateway.sigv4 import AuthResult, CredentialLookup, HttpRequestView, PayloadMode, authenticate
from policy.credentials import Credential
from policy.principals import ANONYMOUS

_SIGNATURE_PARAMETERS = frozenset(
    {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "AWSAccessKeyId", "Signature"}
)
_ANONYMOUS_MODES = {
    PayloadMode.UNSIGNED.value: PayloadMode.UNSIGNED,
    PayloadMode.STREAMING_UNSIGNED_TRAILER.value: PayloadMode.STREAMING_UNSIGNED_TRAILER,
}


def is_anonymous(req: HttpRequestView) -> bool:
    """The request carries no signature at all: no Authorization header and no signature
    query parameter. Such a request is served only where a policy or ACL allows anyone."""
    if "authorization" in req.headers:
        return False
    return not req.query_names & _SIGNATURE_PARAMETERS


def anonymous_auth(req: HttpRequestView) -> AuthResult:
    """The authentication result of an unsigned request. Its body is unsigned, but a body
    hash it declares (``x-amz-content-sha256``) is still checked; a signed streaming mode
    without a signature is refused."""
    declared = req.headers.get("x-amz-content-sha256")
    credential = Credential("", "", ANONYMOUS.name, ANONYMOUS)
    if declared is None or declared in _ANONYMOUS_MODES:
        mode = _ANONYMOUS_MODES.get(declared or "", PayloadMode.UNSIGNED)
        return AuthResult(credential, mode, None, None, presigned=False)
    digest = declared.lower()
    if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
        return AuthResult(credential, PayloadMode.SIGNED, digest, None, presigned=False)
    raise S3Error("AccessDenied", "A signed payload needs a signed request.")


def signature_kind(req: HttpRequestView) -> str:
    """``<version>:<authType>`` of a signed request for the condition keys
    ``s3:signatureversion`` and ``s3:authType``."""
    authorization = req.headers.get("authorization", "")
    if authorization:
        version = "AWS" if authorization.lstrip().startswith("AWS ") else "AWS4-HMAC-SHA256"
        return f"{version}:REST-HEADER"
    version = "AWS4-HMAC-SHA256" if "X-Amz-Algorithm=" in req.query_string else "AWS"
    return f"{version}:REST-QUERY-STRING"


def authenticate_request(
    req: HttpRequestView,
    lookup: CredentialLookup,
    region: str,
    now: datetime,
    max_skew: timedelta = timedelta(minutes=15),
    bucket_in_host: str | None = None,
) -> AuthResult:
    """Verify ``req`` with the signature version it uses and return who signed it.

    ``bucket_in_host`` is the bucket of a virtual-hosted request (SigV2 signs it as part of
    the resource; SigV4 signs the Host header instead). Raises ``InvalidArgument`` when a
    request carries more than one mechanism, else whatever the chosen verifier raises.
    """
    authorization = req.headers.get("authorization")
    names = req.query_names
    v2_header = authorization is not None and authorization.lstrip().startswith("AWS ")
    v2_query = "AWSAccessKeyId" in names or "Signature" in names
    if v2_header or v2_query:
        mechanisms = (authorization is not None) + ("X-Amz-Algorithm" in names) + v2_query
        if mechanisms > 1:
            raise S3Error(
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be "
                "specified",
                ArgumentName="Authorization",
                ArgumentValue=authorization or "",
            )
        return authenticate_v2(req, lookup, now, max_skew, bucket_in_host)
    return authenticate(req, lookup, region, now, max_skew)
