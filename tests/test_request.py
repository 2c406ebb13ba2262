"""Addressing: bucket and key from path or Host, keys verbatim, never normalised."""

from __future__ import annotations

import pytest

from core.errors import S3Error
from gateway.request import Address, header_map, parse_address, parse_query


@pytest.mark.parametrize(
    ("raw_path", "address"),
    [
        ("/", Address(None, None)),
        ("/bucket", Address("bucket", None)),
        ("/bucket/", Address("bucket", None)),
        ("/bucket/a", Address("bucket", "a")),
        ("/bucket/a//b", Address("bucket", "a//b")),
        ("/bucket/dir/", Address("bucket", "dir/")),
        ("/bucket/../x", Address("bucket", "../x")),
        ("/bucket/%2E%2E/x", Address("bucket", "../x")),
        ("/bucket/sp%20ace+plus", Address("bucket", "sp ace+plus")),
        ("/bucket/%C3%A9", Address("bucket", "é")),
    ],
)
def test_path_style(raw_path: str, address: Address) -> None:
    assert parse_address(raw_path, "127.0.0.1:9000", ()) == address


def test_virtual_hosted_style() -> None:
    domains = ("s3.example.com",)
    assert parse_address("/k/e/y", "site-1.s3.example.com:9000", domains) == Address(
        "site-1", "k/e/y"
    )
    assert parse_address("/", "site-1.s3.example.com", domains) == Address("site-1", None)
    assert parse_address("/b/k", "s3.example.com", domains) == Address("b", "k")


def test_key_too_long() -> None:
    parse_address("/b/" + "k" * 1024, "h", ())
    with pytest.raises(S3Error) as excinfo:
        parse_address("/b/" + "é" * 513, "h", ())
    assert excinfo.value.code == "KeyTooLongError"


def test_query_and_headers() -> None:
    assert parse_query("uploads&prefix=a%2Fb&prefix=ignored") == {"uploads": "", "prefix": "a/b"}
    assert header_map([(b"X-Amz-Meta-A", b"1"), (b"x-amz-meta-a", b"2")]) == {"x-amz-meta-a": "1,2"}
