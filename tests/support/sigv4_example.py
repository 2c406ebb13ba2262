"""AWS's published SigV4 example (its credentials, time and chunked-upload headers)."""

from __future__ import annotations

from datetime import UTC, datetime

from policy.credentials import Credential

AK = "AKIAIOSFODNN7EXAMPLE"


SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


REGION = "us-east-1"


EXAMPLE_NOW = datetime(2013, 5, 24, 0, 5, tzinfo=UTC)


ROOT = Credential(AK, SECRET, "root")


def lookup(access_key: str) -> Credential | None:
    return ROOT if access_key == AK else None


def header_auth(signed_headers: str, signature: str) -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request,"
        f"SignedHeaders={signed_headers},Signature={signature}"
    )


CHUNKED_HEADERS = {
    "host": "s3.amazonaws.com",
    "x-amz-date": "20130524T000000Z",
    "x-amz-storage-class": "REDUCED_REDUNDANCY",
    "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "content-encoding": "aws-chunked",
    "x-amz-decoded-content-length": "66560",
    "content-length": "66824",
    "authorization": header_auth(
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class",
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    ),
}
