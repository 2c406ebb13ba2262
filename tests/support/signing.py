"""An independent SigV4 signer for hand-made requests to a gateway."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote

from tests.support.gateway import GatewayEndpoint


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


class Signer:
    """An independent SigV4 header signer for hand-made requests (tamper tests)."""

    def __init__(self, server: GatewayEndpoint, secret: str | None = None) -> None:
        self.server = server
        self.secret = secret or server.secret_key

    def key(self, day: str) -> bytes:
        key = _hmac(f"AWS4{self.secret}".encode(), day)
        for part in (self.server.region, "s3", "aws4_request"):
            key = _hmac(key, part)
        return key

    def sign(
        self,
        method: str,
        path: str,
        payload_hash: str,
        extra: dict[str, str],
        when: datetime,
        host: str | None = None,
    ) -> tuple[dict[str, str], bytes, str, str]:
        """Headers for the request; also the signing key, seed signature and date/scope."""
        amz_date = when.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        host = host or f"127.0.0.1:{self.server.port}"
        headers = {
            "host": host,
            "x-amz-content-sha256": payload_hash,
            "x-amz-date": amz_date,
            **extra,
        }
        names = sorted(headers)
        canonical = "\n".join(
            [
                method,
                quote(path, safe="/~"),
                "",
                "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                ";".join(names),
                payload_hash,
            ]
        )
        scope = f"{day}/{self.server.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = self.key(day)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.server.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        if host == f"127.0.0.1:{self.server.port}":
            del headers["host"]
        return headers, key, signature, f"{amz_date}\n{scope}"
