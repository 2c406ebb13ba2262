"""Which signature a request carries, and the verifier for it.

SigV4 (``Authorization: AWS4-HMAC-SHA256 ...`` or ``X-Amz-Algorithm`` in the query) goes to
:mod:`gateway.sigv4`; SigV2 (``Authorization: AWS key:sig`` or ``AWSAccessKeyId`` /
``Signature`` in the query) to :mod:`gateway.sigv2`. Everything else, anonymous requests
included, is left to :func:`gateway.sigv4.authenticate`, which refuses it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from core.errors import S3Error
from gateway.sigv2 import authenticate_v2
from gateway.sigv4 import AuthResult, CredentialLookup, HttpRequestView, authenticate


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
    names = {name for name, _ in parse_qsl(req.query_string, keep_blank_values=True)}
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
