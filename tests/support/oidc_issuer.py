"""A local OIDC issuer for tests: real HTTP, real keys, tokens signed with PyJWT.

:func:`local_issuer` serves ``/.well-known/openid-configuration`` and ``/jwks`` from a
threaded ``http.server`` on a free 127.0.0.1 port. Its key set can be changed while it runs
(:meth:`LocalIssuer.rotate`), and it counts the requests it answers, so tests can see when
the gateway fetched keys.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

AUDIENCE = "pagewright-gateway"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: PrivateKey

    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            document = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            document = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            document = OKPAlgorithm.to_jwk(public, as_dict=True)
        return {**document, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def new_key(algorithm: str = "RS256", kid: str | None = None) -> SigningKey:
    private: PrivateKey
    if algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return SigningKey(kid or uuid.uuid4().hex[:12], algorithm, private)


@dataclass
class LocalIssuer:
    """The issuer's URL, its published keys and how many requests it answered."""

    url: str
    keys: list[SigningKey] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    down: bool = False  # answer every request 503
    discovery_issuer: str | None = None  # the issuer the discovery document names (url)
    discovery_jwks_uri: str | None = None  # the jwks_uri it names (url/jwks)

    @property
    def jwks_fetches(self) -> int:
        return self.hits.get("/jwks", 0)

    def rotate(self, key: SigningKey) -> None:
        """Publish only ``key`` from now on (the old keys are withdrawn)."""
        self.keys = [key]

    def token(
        self,
        key: SigningKey | None = None,
        *,
        sub: str = "ci-job",
        aud: str | list[str] = AUDIENCE,
        lifetime: int = 300,
        extra: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token signed with ``key`` (default: the first published), valid ``lifetime``
        seconds from now; ``claims`` and ``extra`` override the defaults."""
        key = key or self.keys[0]
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.url,
            "sub": sub,
            "aud": aud,
            "iat": now,
            "exp": now + lifetime,
            "sites": ["docs"],
            **claims,
            **(extra or {}),
        }
        return jwt.encode(
            payload,
            key.private,
            algorithm=key.algorithm,
            headers={"kid": key.kid, **(headers or {})},
        )

    def table(self, **overrides: Any) -> dict[str, Any]:
        """The ``[[oidc.issuers]]`` table of this issuer (discovery, no jwks_uri)."""
        return {"issuer": self.url, "audiences": [AUDIENCE], **overrides}


@contextmanager
def local_issuer(*keys: SigningKey) -> Iterator[LocalIssuer]:
    """Serve an issuer publishing ``keys`` (default: one RS256 key) until the context exits."""
    issuer = LocalIssuer("", list(keys) or [new_key()])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer.hits[self.path] = issuer.hits.get(self.path, 0) + 1
            if issuer.down:
                self.send_error(503)
                return
            if self.path == "/.well-known/openid-configuration":
                named = issuer.discovery_issuer or issuer.url
                jwks_uri = issuer.discovery_jwks_uri or issuer.url + "/jwks"
                document: dict[str, Any] = {"issuer": named, "jwks_uri": jwks_uri}
            elif self.path == "/jwks":
                document = {"keys": [key.public_jwk() for key in issuer.keys]}
            else:
                self.send_error(404)
                return
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
