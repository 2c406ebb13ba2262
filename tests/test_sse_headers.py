"""Every ``x-amz-server-side-encryption*`` header is implemented or refused with S3's error
(never accepted and ignored), SSE-C requires TLS unless configured otherwise, and multipart
uploads encrypt each part (boto3 and raw requests against the in-process gateway)."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from core.errors import S3Error
from gateway.routing import Operation
from gateway.settings import Settings
from gateway.sse_headers import check_allowed, customer_key, write_request
from policy.sse_crypto import CHUNK
from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway, in_process_gateway
from tests.support.raw_s3 import send
from tests.support.s3_errors import error_code, status
from tests.test_sse import body_of, sse_c, stored

KEY = os.urandom(32)
B64 = base64.b64encode(KEY).decode()
MD5 = base64.b64encode(hashlib.md5(KEY).digest()).decode()
CUSTOMER = {
    "x-amz-server-side-encryption-customer-algorithm": "AES256",
    "x-amz-server-side-encryption-customer-key": B64,
    "x-amz-server-side-encryption-customer-key-md5": MD5,
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    settings = Settings(log_level="warning", sse_c_require_tls=False, kms_key_ids=("site-key",))
    with in_process_gateway(tmp_path_factory.mktemp("sseh") / "data", settings) as server:
        yield server


@pytest.fixture
def s3(gateway: InProcessGateway) -> Any:
    return make_s3_client(gateway)


@pytest.fixture
def bucket(s3: Any, bucket_name: Callable[[], str]) -> str:
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    return name


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"x-amz-server-side-encryption": "AES128"}, "InvalidArgument"),
        ({"x-amz-server-side-encryption": "aws:kms:dsse"}, "NotImplemented"),
        ({"x-amz-server-side-encryption-aws-kms-key-id": "site-key"}, "InvalidArgument"),
        (
            {
                "x-amz-server-side-encryption": "AES256",
                "x-amz-server-side-encryption-aws-kms-key-id": "site-key",
            },
            "InvalidArgument",
        ),
        (
            {
                "x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-context": "e30=",
            },
            "NotImplemented",
        ),
        (
            {
                "x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-bucket-key-enabled": "true",
            },
            "NotImplemented",
        ),
        (
            {
                "x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-bucket-key-enabled": "maybe",
            },
            "InvalidArgument",
        ),
        ({**CUSTOMER, "x-amz-server-side-encryption": "AES256"}, "InvalidArgument"),
        (
            {**CUSTOMER, "x-amz-server-side-encryption-customer-algorithm": "AES128"},
            "InvalidEncryptionAlgorithmError",
        ),
        ({**CUSTOMER, "x-amz-server-side-encryption-customer-key": "c2hvcnQ="}, "InvalidArgument"),
        ({**CUSTOMER, "x-amz-server-side-encryption-customer-key": "%%%"}, "InvalidArgument"),
        (
            {
                **CUSTOMER,
                "x-amz-server-side-encryption-customer-key-md5": "AAAAAAAAAAAAAAAAAAAAAA==",
            },
            "InvalidArgument",
        ),
        (
            {"x-amz-server-side-encryption-customer-key": B64},
            "InvalidArgument",
        ),
        (
            {
                "x-amz-server-side-encryption-customer-algorithm": "AES256",
                "x-amz-server-side-encryption-customer-key": B64,
            },
            "InvalidArgument",
        ),
    ],
)
def test_put_refusals(
    gateway: InProcessGateway, bucket: str, headers: dict[str, str], code: str
) -> None:
    reply = send(gateway, "PUT", f"/{bucket}/k", headers=headers, body=b"data")
    assert reply.error_code() == code, reply.body
    assert reply.status == (501 if code == "NotImplemented" else 400)
    assert B64.encode() not in reply.body


@pytest.mark.parametrize(
    ("method", "path_suffix", "query", "header"),
    [
        ("GET", "/k", "", "x-amz-server-side-encryption"),
        ("HEAD", "/k", "", "x-amz-server-side-encryption"),
        ("GET", "/k", "", "x-amz-server-side-encryption-aws-kms-key-id"),
        ("DELETE", "/k", "", "x-amz-server-side-encryption"),
        ("DELETE", "/k", "", "x-amz-server-side-encryption-customer-algorithm"),
        ("GET", "", "list-type=2", "x-amz-server-side-encryption"),
        ("PUT", "/k", "", "x-amz-copy-source-server-side-encryption-customer-algorithm"),
        ("GET", "/k", "", "x-amz-server-side-encryption-unknown"),
    ],
)
def test_headers_on_operations_that_do_not_take_them(
    gateway: InProcessGateway,
    s3: Any,
    bucket: str,
    method: str,
    path_suffix: str,
    query: str,
    header: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    reply = send(gateway, method, f"/{bucket}{path_suffix}", query, headers={header: "AES256"})
    assert reply.status in (400, 501)
    if method != "HEAD":
        expected = "NotImplemented" if header.endswith("unknown") else "InvalidArgument"
        assert reply.error_code() == expected
    # Nothing changed.
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"


def test_every_write_operation_takes_the_headers() -> None:
    request = write_request(
        {"x-amz-server-side-encryption": "AES256"}, secure=False, require_tls=True
    )
    assert request is not None
    assert request.mode == "AES256"
    for operation in (Operation.PutObject, Operation.CopyObject, Operation.CreateMultipartUpload):
        check_allowed(operation, {"x-amz-server-side-encryption": "AES256", **CUSTOMER})
    for operation in (Operation.UploadPart, Operation.GetObject, Operation.HeadObject):
        check_allowed(operation, CUSTOMER)


def test_sse_c_requires_tls_by_default(s3: Any, tmp_path: Any) -> None:
    with pytest.raises(S3Error) as refused:
        customer_key(CUSTOMER, secure=False, require_tls=True)
    assert refused.value.code == "InvalidRequest"
    assert customer_key(CUSTOMER, secure=True, require_tls=True) is not None
    with in_process_gateway(tmp_path / "data") as server:
        client = make_s3_client(server)
        client.create_bucket(Bucket="tls")
        with pytest.raises(ClientError) as plain_http:
            client.put_object(Bucket="tls", Key="k", Body=b"x", **sse_c(KEY))
        assert error_code(plain_http) == "InvalidRequest"
        assert status(plain_http) == 400


def test_no_kms_ring_refuses_aws_kms(tmp_path: Any) -> None:
    with in_process_gateway(tmp_path / "data") as server:
        client = make_s3_client(server)
        client.create_bucket(Bucket="nokms")
        with pytest.raises(ClientError) as refused:
            client.put_object(Bucket="nokms", Key="k", Body=b"x", ServerSideEncryption="aws:kms")
        assert error_code(refused) == "KMS.NotFoundException"


@pytest.mark.parametrize("mode", ["AES256", "aws:kms", "SSE-C"])
def test_multipart_encrypts_each_part(
    s3: Any, gateway: InProcessGateway, bucket: str, mode: str
) -> None:
    extra: dict[str, Any] = sse_c(KEY) if mode == "SSE-C" else {"ServerSideEncryption": mode}
    parts_data = [body_of(5 * 1024 * 1024 + 7), body_of(5 * 1024 * 1024)[::-1], body_of(CHUNK + 1)]
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32", **extra
    )
    if mode == "SSE-C":
        assert created["SSECustomerKeyMD5"] == MD5
        part_extra = sse_c(KEY)
    else:
        assert created["ServerSideEncryption"] == mode
        part_extra = {}
    etags = []
    for number, data in enumerate(parts_data, 1):
        part = s3.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=created["UploadId"],
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="CRC32",
            **part_extra,
        )
        if mode == "AES256":
            assert part["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        if mode != "SSE-C":
            assert part["ServerSideEncryption"] == mode
        etags.append(
            {"PartNumber": number, "ETag": part["ETag"], "ChecksumCRC32": part["ChecksumCRC32"]}
        )
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=created["UploadId"])
    assert [p["Size"] for p in listed["Parts"]] == [len(d) for d in parts_data]
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=created["UploadId"],
        MultipartUpload={"Parts": etags},
    )
    if mode != "SSE-C":
        assert done["ServerSideEncryption"] == mode
    whole = b"".join(parts_data)
    raw = stored(gateway, bucket, "mp").data
    assert whole[:64] not in raw
    assert whole[-64:] not in raw
    read = sse_c(KEY) if mode == "SSE-C" else {}
    got = s3.get_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED", **read)
    assert got["Body"].read() == whole
    assert got["ContentLength"] == len(whole)
    assert got["ETag"] == done["ETag"]
    head = s3.head_object(Bucket=bucket, Key="mp", **read)
    assert head["ContentLength"] == len(whole)
    first_part_end = len(parts_data[0])
    for first, last in [
        (first_part_end - 10, first_part_end + 10),  # across parts
        (0, len(whole) - 1),
        (first_part_end - 1, first_part_end),
        (2 * 1024 * 1024, 2 * 1024 * 1024 + CHUNK),  # deep into part 1: header read apart
        (len(whole) - 5, len(whole) - 1),
    ]:
        ranged = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={first}-{last}", **read)
        assert ranged["Body"].read() == whole[first : last + 1], (first, last)
    for number, data in enumerate(parts_data, 1):
        by_part = s3.get_object(Bucket=bucket, Key="mp", PartNumber=number, **read)
        assert by_part["Body"].read() == data
    listing = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listing] == [("mp", len(whole))]


def test_sse_c_part_needs_the_key(s3: Any, bucket: str) -> None:
    created = s3.create_multipart_upload(Bucket=bucket, Key="mp", **sse_c(KEY))
    upload = {"Bucket": bucket, "Key": "mp", "UploadId": created["UploadId"], "PartNumber": 1}
    with pytest.raises(ClientError) as missing:
        s3.upload_part(Body=b"x", **upload)
    assert error_code(missing) == "InvalidRequest"
    with pytest.raises(ClientError) as wrong:
        s3.upload_part(Body=b"x", **upload, **sse_c(os.urandom(32)))
    assert status(wrong) == 403
    plain = s3.create_multipart_upload(Bucket=bucket, Key="plain")
    with pytest.raises(ClientError) as needless:
        s3.upload_part(
            Body=b"x",
            Bucket=bucket,
            Key="plain",
            UploadId=plain["UploadId"],
            PartNumber=1,
            **sse_c(KEY),
        )
    assert error_code(needless) == "InvalidRequest"


def test_upload_part_copy_from_encrypted_source(s3: Any, bucket: str) -> None:
    data = body_of(5 * 1024 * 1024 + 100)
    s3.put_object(Bucket=bucket, Key="src", Body=data, **sse_c(KEY))
    created = s3.create_multipart_upload(Bucket=bucket, Key="dst", ServerSideEncryption="AES256")
    part = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=created["UploadId"],
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange="bytes=10-5242889",
        CopySourceSSECustomerAlgorithm="AES256",
        CopySourceSSECustomerKey=KEY,
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="dst",
        UploadId=created["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]},
    )
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data[10:5242890]
