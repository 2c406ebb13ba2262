"""Byte-exact S3 requests for bad-input tests: a path and query sent exactly as written
(already percent-encoded), signed with botocore's SigV4 (or not signed at all), over
``http.client`` so that nothing between the test and the gateway rewrites them."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from lxml import etree

from tests.support.gateway import GatewayEndpoint


@dataclass(frozen=True)
class RawReply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def xml(self) -> etree._Element:
        """The body parsed by a strict XML 1.0 parser (no recovery): raises on any body
        that is not well-formed."""
        parser = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)
        return etree.fromstring(self.body, parser)

    def error_code(self) -> str:
        """The ``Code`` of an S3 ``<Error>`` body (parsed strictly)."""
        root = self.xml()
        assert root.tag == "Error", self.body
        return str(root.findtext("Code"))


def q(value: str) -> str:
    """A query value percent-encoded as SigV4 canonicalises it (so the signature holds)."""
    return quote(value.encode("utf-8"), safe="-_.~")


def send(
    server: GatewayEndpoint,
    method: str,
    path: str,
    query: str = "",
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    sign: bool = True,
) -> RawReply:
    """``method path?query`` to ``server``, SigV4-signed unless ``sign`` is False."""
    url = f"{server.endpoint}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    if sign:
        credentials = Credentials(server.access_key, server.secret_key)
        S3SigV4Auth(credentials, "s3", server.region).add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(server.endpoint)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        target = path + (f"?{query}" if query else "")
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", parts.netloc)
        sent = {name.lower() for name in prepared.headers}
        for name, value in prepared.headers.items():
            if name.lower() != "host":
                connection.putheader(name, value)
        if "content-length" not in sent and (body or method in ("PUT", "POST")):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        data = response.read()
        reply_headers = {name.lower(): value for name, value in response.getheaders()}
        return RawReply(response.status, reply_headers, data)
    finally:
        connection.close()
