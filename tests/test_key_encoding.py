"""Request text that is not UTF-8 once percent-decoded is refused (400), never decoded lossily:
``/b/inv%FE`` and ``/b/inv%FF`` would both be the key ``inv\\ufffd``."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from core.errors import S3Error
from gateway.request import parse_address, parse_query
from gateway.sigv4_signing import parse_query as parse_pairs
from tests.support.gateway import InProcessGateway
from tests.support.raw_s3 import send

#: Percent-encoded bytes that are not UTF-8: a lone byte, a truncated sequence, an
#: encoded surrogate, an overlong encoding.
NOT_UTF8 = ["%FE", "%FF", "%C3", "%E2%82", "%ED%A0%80", "%C0%AF"]


@pytest.mark.parametrize("escape", NOT_UTF8)
def test_parse_address_refuses_keys_that_are_not_utf8(escape: str) -> None:
    for path in (f"/b/inv{escape}", f"/b{escape}/k"):
        with pytest.raises(S3Error) as caught:
            parse_address(path, "h", ())
        assert (caught.value.code, caught.value.status) == ("InvalidURI", 400)
    with pytest.raises(S3Error):
        parse_address(f"/k{escape}", "site.s3.example.com", ("s3.example.com",))


@pytest.mark.parametrize("escape", NOT_UTF8)
@pytest.mark.parametrize("decoded_for_auth", [False, True])
def test_parse_query_names_the_parameter(escape: str, decoded_for_auth: bool) -> None:
    """The same errors whether or not authentication's decoded pairs are passed in."""

    def parse(query: str) -> dict[str, str]:
        return parse_query(query, parse_pairs(query) if decoded_for_auth else None)

    with pytest.raises(S3Error) as caught:
        parse(f"list-type=2&prefix=a{escape}")
    assert caught.value.code == "InvalidArgument"
    assert caught.value.fields == {"ArgumentName": "prefix", "ArgumentValue": f"a{escape}"}
    with pytest.raises(S3Error) as name:
        parse(f"x{escape}=1")
    assert name.value.code == "InvalidURI"


def test_valid_utf8_still_decodes() -> None:
    assert parse_address("/b/%C3%A9%F0%9F%98%80%EF%BF%BE", "h", ()).key == "é😀\ufffe"
    assert parse_query("prefix=%C3%A9+x&marker=%01") == {"prefix": "é x", "marker": "\x01"}
    for query in ("prefix=%C3%A9+x&marker=%01", "uploads&prefix=a%2Fb&prefix=ignored&&x=", ""):
        assert parse_query(query, parse_pairs(query)) == parse_query(query)


def test_a_key_that_is_not_utf8_is_not_another_key(
    gateway: InProcessGateway, s3: Any, bucket: str
) -> None:
    first = send(gateway, "PUT", f"/{bucket}/inv%FF", body=b"first")
    assert (first.status, first.error_code()) == (400, "InvalidURI")
    second = send(gateway, "PUT", f"/{bucket}/inv%FE", body=b"second")
    assert (second.status, second.error_code()) == (400, "InvalidURI")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    reading = send(gateway, "GET", f"/{bucket}/inv%FE")
    assert (reading.status, reading.error_code()) == (400, "InvalidURI")


@pytest.mark.parametrize(
    "parameter", ["prefix", "marker", "start-after", "delimiter", "continuation-token"]
)
def test_listing_parameters_that_are_not_utf8(
    gateway: InProcessGateway, bucket: str, parameter: str
) -> None:
    reply = send(gateway, "GET", f"/{bucket}", f"list-type=2&{parameter}=a%FF")
    assert (reply.status, reply.error_code()) == (400, "InvalidArgument")
    assert reply.xml().findtext("ArgumentName") == parameter


def test_a_continuation_token_that_decodes_to_a_surrogate(
    gateway: InProcessGateway, bucket: str
) -> None:
    token = "7aCA"  # base64 of ED A0 80: U+D800 encoded as if it were UTF-8
    reply = send(gateway, "GET", f"/{bucket}", f"list-type=2&continuation-token={token}")
    assert (reply.status, reply.error_code()) == (400, "InvalidArgument")


def test_a_copy_source_that_is_not_utf8(gateway: InProcessGateway, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="inv\ufffd", Body=b"replacement character")
    reply = send(
        gateway, "PUT", f"/{bucket}/copy", headers={"x-amz-copy-source": f"/{bucket}/inv%FF"}
    )
    assert (reply.status, reply.error_code()) == (400, "InvalidArgument")
    assert reply.xml().findtext("ArgumentName") == "x-amz-copy-source"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="copy")
