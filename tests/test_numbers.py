"""The one strict number parser, and every numeric request input going through it: a
number S3 cannot read is a 4xx in S3's error shape, never a 500."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from core.errors import S3Error
from core.numbers import INT64_MAX, NumberError, decimal, int_argument, saturating_decimal
from tests.support.gateway import InProcessGateway
from tests.support.raw_s3 import send

HUGE = "9" * 5000  # int() refuses more than 4,300 digits
SUPERSCRIPT_TWO = "\u00b2"  # str.isdigit() is True, int() refuses it


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("7", 7), ("007", 7), ("10000", 10000), (str(INT64_MAX), INT64_MAX)],
)
def test_decimal_reads_ascii_digits(text: str, expected: int) -> None:
    assert decimal(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", " 1", "1 ", "+1", "-1", "1_000", "0x10", "1.0", "1e3", SUPERSCRIPT_TWO, "\u0663", "١٢"],
)
def test_decimal_refuses_anything_else(text: str) -> None:
    with pytest.raises(NumberError) as caught:
        decimal(text)
    assert not caught.value.out_of_range


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [("0", 1, 10), ("11", 1, 10), (str(INT64_MAX + 1), 0, INT64_MAX), (HUGE, 0, INT64_MAX)],
)
def test_decimal_bounds(text: str, low: int, high: int) -> None:
    with pytest.raises(NumberError) as caught:
        decimal(text, low=low, high=high)
    assert caught.value.out_of_range


def test_saturating_decimal() -> None:
    assert saturating_decimal("00012") == 12
    assert saturating_decimal(HUGE) == INT64_MAX
    assert saturating_decimal("0" * 5000 + "5") == 5
    with pytest.raises(NumberError):
        saturating_decimal(SUPERSCRIPT_TWO)


def test_int_argument_names_the_argument() -> None:
    with pytest.raises(S3Error) as caught:
        int_argument("max-keys", "x", high=5)
    assert caught.value.code == "InvalidArgument"
    assert caught.value.fields == {"ArgumentName": "max-keys", "ArgumentValue": "x"}


# Every numeric input of a real gateway


@pytest.fixture
def small(s3: Any, bucket: str) -> str:
    s3.put_object(Bucket=bucket, Key="small", Body=b"0123456789")
    return f"/{bucket}/small"


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, HUGE, "0", "10001", "1" + "0" * 40])
def test_get_part_number(gateway: InProcessGateway, small: str, value: str) -> None:
    reply = send(gateway, "GET", small, f"partNumber={quote(value)}")
    assert (reply.status, reply.error_code()) == (400, "InvalidArgument")
    assert reply.xml().findtext("ArgumentName") == "partNumber"


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, HUGE])
def test_upload_part_number(gateway: InProcessGateway, s3: Any, bucket: str, value: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    reply = send(
        gateway, "PUT", f"/{bucket}/mp", f"partNumber={quote(value)}&uploadId={upload}", body=b"x"
    )
    assert (reply.status, reply.error_code()) == (400, "InvalidArgument")


def test_a_range_beyond_any_size_is_clamped_or_unsatisfiable(
    gateway: InProcessGateway, small: str
) -> None:
    """Positions of any length are valid syntax (RFC 9110): a huge last position is clamped
    to the object, a huge first position cannot be satisfied."""
    clamped = send(gateway, "GET", small, headers={"Range": f"bytes=2-{HUGE}"})
    assert (clamped.status, clamped.body) == (206, b"23456789")
    assert clamped.headers["content-range"] == "bytes 2-9/10"
    suffix = send(gateway, "GET", small, headers={"Range": f"bytes=-{HUGE}"})
    assert (suffix.status, suffix.body) == (206, b"0123456789")
    beyond = send(gateway, "GET", small, headers={"Range": f"bytes={HUGE}-"})
    assert (beyond.status, beyond.error_code()) == (416, "InvalidRange")


@pytest.mark.parametrize("value", [f"bytes=0-{SUPERSCRIPT_TWO}", "bytes=0x1-2", "bytes=1-0"])
def test_an_unparseable_range_is_ignored(gateway: InProcessGateway, small: str, value: str) -> None:
    reply = send(gateway, "GET", small, headers={"Range": value})
    assert (reply.status, reply.body) == (200, b"0123456789")


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, HUGE, "-1", "12abc"])
def test_decoded_content_length(gateway: InProcessGateway, bucket: str, value: str) -> None:
    reply = send(
        gateway,
        "PUT",
        f"/{bucket}/k",
        headers={"x-amz-decoded-content-length": value},
        body=b"abc",
    )
    assert (reply.status, reply.error_code()) == (400, "InvalidArgument")
    assert reply.xml().findtext("ArgumentName") == "x-amz-decoded-content-length"


def _presigned_query(gateway: InProcessGateway, expires: str) -> str:
    now = datetime.now(UTC)
    scope = f"{now:%Y%m%d}/{gateway.region}/s3/aws4_request"
    return (
        f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={gateway.access_key}%2F"
        f"{quote(scope, safe='')}&X-Amz-Date={now:%Y%m%dT%H%M%SZ}"
        f"&X-Amz-Expires={quote(expires)}&X-Amz-SignedHeaders=host&X-Amz-Signature={'0' * 64}"
    )


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (SUPERSCRIPT_TWO, "should be a number"),
        (HUGE, "less than a week"),
        ("\u0663", "should be a number"),
    ],
)
def test_presigned_expires(gateway: InProcessGateway, small: str, value: str, says: str) -> None:
    reply = send(gateway, "GET", small, _presigned_query(gateway, value), sign=False)
    assert (reply.status, reply.error_code()) == (400, "AuthorizationQueryParametersError")
    assert says in str(reply.xml().findtext("Message"))


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, HUGE, "\u0663"])
def test_sigv2_expires(gateway: InProcessGateway, small: str, value: str) -> None:
    query = f"AWSAccessKeyId={gateway.access_key}&Signature=abc&Expires={quote(value)}"
    reply = send(gateway, "GET", small, query, sign=False)
    assert (reply.status, reply.error_code()) == (403, "AccessDenied")


def _lifecycle(days: str, rule_id: str = "r") -> bytes:
    return (
        f"<LifecycleConfiguration><Rule><ID>{rule_id}</ID><Filter><Prefix>builds/</Prefix>"
        f"</Filter><Status>Enabled</Status><Expiration><Days>{days}</Days></Expiration></Rule>"
        "</LifecycleConfiguration>"
    ).encode()


@pytest.mark.parametrize(
    ("days", "rule_id", "code"),
    [
        (SUPERSCRIPT_TWO, "r", "MalformedXML"),
        ("\u0663", "r", "MalformedXML"),
        (HUGE, "r", "InvalidArgument"),
        ("0", "r", "InvalidArgument"),
        ("2147483648", "r", "InvalidArgument"),
        ("36501", "pagewright-retention", "InvalidArgument"),
    ],
)
def test_lifecycle_days(
    gateway: InProcessGateway, s3: Any, bucket: str, days: str, rule_id: str, code: str
) -> None:
    body = _lifecycle(days, rule_id)
    reply = send(
        gateway,
        "PUT",
        f"/{bucket}",
        "lifecycle=",
        headers={"Content-MD5": _md5(body)},
        body=body,
    )
    assert (reply.status, reply.error_code()) == (400, code)
    with pytest.raises(ClientError):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)


def test_lifecycle_days_at_the_bound_are_stored(s3: Any, bucket: str) -> None:
    rule = {
        "ID": "r",
        "Filter": {"Prefix": "builds/"},
        "Status": "Enabled",
        "Expiration": {"Days": 36500},
    }
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})
    stored = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert stored["Rules"][0]["Expiration"]["Days"] == 36500


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


@pytest.mark.parametrize(
    ("number", "code"),
    [(SUPERSCRIPT_TWO, "MalformedXML"), (HUGE, "InvalidArgument"), ("0", "InvalidArgument")],
)
def test_complete_part_number(
    gateway: InProcessGateway, s3: Any, bucket: str, number: str, code: str
) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"x")
    body = (
        "<CompleteMultipartUpload><Part>"
        f"<PartNumber>{number}</PartNumber><ETag>{part['ETag']}</ETag>"
        "</Part></CompleteMultipartUpload>"
    ).encode()
    reply = send(gateway, "POST", f"/{bucket}/mp", f"uploadId={upload}", body=body)
    assert (reply.status, reply.error_code()) == (400, code)
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload)


@pytest.mark.parametrize("header", ["x-amz-max-parts", "x-amz-part-number-marker"])
@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, HUGE, "abc"])
def test_object_attributes_part_paging(
    gateway: InProcessGateway, s3: Any, bucket: str, header: str, value: str
) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"x")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    reply = send(
        gateway,
        "GET",
        f"/{bucket}/mp",
        "attributes=",
        headers={"x-amz-object-attributes": "ObjectParts", header: value},
    )
    assert (reply.status, reply.error_code()) == (400, "InvalidArgument")
    assert reply.xml().findtext("ArgumentName") == header


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, HUGE, "-1", "\u0663"])
def test_max_keys(gateway: InProcessGateway, bucket: str, value: str) -> None:
    reply = send(gateway, "GET", f"/{bucket}", f"list-type=2&max-keys={quote(value)}")
    assert (reply.status, reply.error_code()) == (400, "InvalidArgument")
