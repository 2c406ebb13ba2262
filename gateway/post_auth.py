"""Who signed a POST Object form: the signature over its policy, SigV4 or SigV2.

A browser form is signed by signing its ``policy`` field, not the request (AWS, "Browser-based
uploads using POST"):

* SigV4: fields ``x-amz-algorithm`` (``AWS4-HMAC-SHA256``), ``x-amz-credential``
  (``<key>/<yyyymmdd>/<region>/s3/aws4_request``), ``x-amz-date`` and ``x-amz-signature``,
  the hex HMAC-SHA256 of the base64 policy under the scope's signing key;
* SigV2: ``AWSAccessKeyId`` and ``signature``, the base64 HMAC-SHA1 of the base64 policy;
* neither: an anonymous upload, allowed only where a bucket policy or ACL lets anyone write.

An STS session's form carries ``x-amz-security-token`` (checked as for any request:
``gateway.session_auth``). The policy's expiration and conditions are
``gateway.post_policy``'s; here only the signature is checked. Refusals are S3's:
``InvalidArgument`` for a missing or malformed field, ``InvalidAccessKeyId``,
``SignatureDoesNotMatch``, and the session errors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from core.errors import S3Error
from gateway.credentials import CredentialResolver
from gateway.session_auth import session_lookup
from gateway.sigv4_signing import ALGORITHM, SERVICE, TERMINATOR, signing_key
from policy.credentials import Credential
from policy.principals import ANONYMOUS
from policy.secret_box import SecretBox

_AMZ_DATE: Final = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_V4_FIELDS: Final = ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature")
_V2_FIELDS: Final = ("awsaccesskeyid", "signature")


@dataclass(frozen=True)
class FormSigner:
    """Who signed a form: the credential and ``<version>:POST`` (None: anonymous)."""

    credential: Credential
    signature: str | None


def _argument(name: str, message: str, value: str = "") -> S3Error:
    return S3Error("InvalidArgument", message, ArgumentName=name, ArgumentValue=value)


class FormAuthenticator:
    """Checks form signatures with the gateway's credentials (``credentials``, sessions
    sealed by ``box``; None: sessions are off) for ``region``."""

    def __init__(self, credentials: CredentialResolver, box: SecretBox | None, region: str) -> None:
        self._credentials = credentials
        self._box = box
        self._region = region

    async def authenticate(self, fields: Mapping[str, str], now: datetime) -> FormSigner:
        """The signer of a form whose ``fields`` have lower-case names (see the module
        docstring)."""
        v4 = any(name in fields for name in _V4_FIELDS)
        v2 = any(name in fields for name in _V2_FIELDS)
        if v4 and v2:
            raise _argument(
                "Authorization",
                "Only one auth mechanism allowed; sign the form with SigV4 or SigV2, not both.",
            )
        if not v4 and not v2:
            return FormSigner(Credential("", "", ANONYMOUS.name, ANONYMOUS), None)
        policy = fields.get("policy")
        if not policy:
            raise _argument(
                "policy",
                "Bucket POST must contain a field named 'policy'.  If it is specified, please "
                "check the order of the fields.",
            )
        if v4:
            return await self._v4(fields, policy, now)
        return await self._v2(fields, policy, now)

    async def _v4(self, fields: Mapping[str, str], policy: str, now: datetime) -> FormSigner:
        for name in _V4_FIELDS:
            if not fields.get(name):
                raise _argument(
                    name,
                    f"Bucket POST must contain a field named '{name}'.  If it is specified, "
                    "please check the order of the fields.",
                )
        algorithm = fields["x-amz-algorithm"]
        if algorithm != ALGORITHM:
            raise _argument(
                "x-amz-algorithm", f"Only {ALGORITHM} is supported for POST.", algorithm
            )
        credential_field = fields["x-amz-credential"]
        parts = credential_field.split("/")
        amz_date = fields["x-amz-date"]
        if (
            len(parts) != 5
            or not parts[0]
            or parts[3] != SERVICE
            or parts[4] != TERMINATOR
            or not _AMZ_DATE.fullmatch(amz_date)
            or amz_date[:8] != parts[1]
        ):
            raise _argument(
                "x-amz-credential",
                "The x-amz-credential or x-amz-date field is malformed.",
                credential_field,
            )
        if parts[2] != self._region:
            raise _argument(
                "x-amz-credential",
                f"The region {parts[2]!r} is wrong; expecting {self._region!r}.",
                credential_field,
            )
        access_key = parts[0]
        credential = await self._find(access_key, fields, now)
        key = signing_key(credential.secret_key, parts[1], parts[2], SERVICE)
        expected = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()
        _compare(expected, fields["x-amz-signature"], access_key, policy)
        return FormSigner(credential, f"{ALGORITHM}:POST")

    async def _v2(self, fields: Mapping[str, str], policy: str, now: datetime) -> FormSigner:
        access_key = fields.get("awsaccesskeyid", "")
        provided = fields.get("signature", "")
        if not access_key or not provided:
            missing = "AWSAccessKeyId" if not access_key else "Signature"
            raise _argument(
                missing,
                f"Bucket POST must contain a field named '{missing}'.  If it is specified, "
                "please check the order of the fields.",
            )
        credential = await self._find(access_key, fields, now)
        digest = hmac.new(credential.secret_key.encode(), policy.encode(), hashlib.sha1).digest()
        _compare(base64.b64encode(digest).decode(), provided, access_key, policy)
        return FormSigner(credential, "AWS:POST")

    async def _find(self, access_key: str, fields: Mapping[str, str], now: datetime) -> Credential:
        found = await self._credentials.find(access_key, now)

        def lookup(key: str) -> Credential | None:
            return found if found is not None and found.access_key == key else None

        token = fields.get("x-amz-security-token")
        credential = session_lookup(lookup, self._box, token, now)(access_key)
        if credential is None:
            raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key)
        return credential


def _compare(expected: str, provided: str, access_key: str, policy: str) -> None:
    if not hmac.compare_digest(expected.encode(), provided.strip().encode()):
        raise S3Error(
            "SignatureDoesNotMatch",
            AWSAccessKeyId=access_key,
            StringToSign=policy,
            SignatureProvided=provided,
        )
