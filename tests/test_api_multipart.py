"""Multipart uploads over HTTP with boto3: ETags, ordering rules, checksums, copy, listing."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

from core import checksums
from tests.support.s3_errors import error_code

MIB = 1024 * 1024


def multipart_etag(parts: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def upload(s3: Any, bucket: str, key: str, parts: list[bytes], **create: Any) -> dict[str, Any]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    extra = (
        {"ChecksumAlgorithm": create["ChecksumAlgorithm"]} if "ChecksumAlgorithm" in create else {}
    )
    for number, body in enumerate(parts, 1):
        result = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, **extra
        )
        entry = {"PartNumber": number, "ETag": result["ETag"]}
        entry.update(
            {k: v for k, v in result.items() if k.startswith("Checksum") and k != "ChecksumType"}
        )
        done.append(entry)
    completed: dict[str, Any] = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    return completed


def test_multipart_round_trip(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), b"tail"]
    result = upload(s3, bucket, "mp", parts, ContentType="application/gzip", Metadata={"a": "b"})
    assert result["ETag"] == multipart_etag(parts)
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == b"".join(parts)
    assert got["ContentType"] == "application/gzip"
    assert got["Metadata"] == {"a": "b"}
    assert got["ETag"] == multipart_etag(parts)
    second = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert second["Body"].read() == parts[1]
    assert second["PartsCount"] == 3
    assert second["ContentRange"] == f"bytes {5 * MIB}-{10 * MIB - 1}/{10 * MIB + 4}"
    attributes = s3.get_object_attributes(
        Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=2
    )
    assert attributes["ObjectParts"]["TotalPartsCount"] == 3
    assert [p["Size"] for p in attributes["ObjectParts"]["Parts"]] == [5 * MIB, 5 * MIB]
    assert attributes["ObjectParts"]["IsTruncated"]


def test_single_empty_part(s3: Any, bucket: str) -> None:
    result = upload(s3, bucket, "zero", [b""])
    assert result["ETag"] == multipart_etag([b""])
    assert s3.get_object(Bucket=bucket, Key="zero")["Body"].read() == b""


def test_part_rules(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="rules")["UploadId"]
    etags = {}
    for number, body in ((1, b"small"), (2, b"x" * 10)):
        etags[number] = s3.upload_part(
            Bucket=bucket, Key="rules", UploadId=upload_id, PartNumber=number, Body=body
        )["ETag"]

    def complete(parts: list[dict[str, Any]]) -> str:
        with pytest.raises(ClientError) as excinfo:
            s3.complete_multipart_upload(
                Bucket=bucket, Key="rules", UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        return error_code(excinfo)

    assert complete([{"PartNumber": 1, "ETag": etags[1]}, {"PartNumber": 2, "ETag": etags[2]}]) == (
        "EntityTooSmall"
    )
    assert complete([{"PartNumber": 2, "ETag": etags[2]}, {"PartNumber": 1, "ETag": etags[1]}]) == (
        "InvalidPartOrder"
    )
    assert (
        complete([{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]) == "InvalidPart"
    )
    assert complete([{"PartNumber": 3, "ETag": etags[1]}]) == "InvalidPart"
    # Nothing became visible; the upload is still there and completes with a valid list.
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="rules")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="rules",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": etags[2]}]},
    )
    assert s3.get_object(Bucket=bucket, Key="rules")["Body"].read() == b"x" * 10


def test_out_of_order_and_replaced_parts(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="ooo")["UploadId"]
    first, second = os.urandom(5 * MIB), b"end"
    r2 = s3.upload_part(Bucket=bucket, Key="ooo", UploadId=upload_id, PartNumber=2, Body=second)
    s3.upload_part(Bucket=bucket, Key="ooo", UploadId=upload_id, PartNumber=1, Body=b"old")
    r1 = s3.upload_part(Bucket=bucket, Key="ooo", UploadId=upload_id, PartNumber=1, Body=first)
    listed = s3.list_parts(Bucket=bucket, Key="ooo", UploadId=upload_id)
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, 5 * MIB), (2, 3)]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="ooo",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": r1["ETag"]}, {"PartNumber": 2, "ETag": r2["ETag"]}]
        },
    )
    assert s3.get_object(Bucket=bucket, Key="ooo")["Body"].read() == first + second


def test_abort_and_list_uploads(s3: Any, bucket: str) -> None:
    ids = [s3.create_multipart_upload(Bucket=bucket, Key=f"u/{i}")["UploadId"] for i in range(3)]
    s3.create_multipart_upload(Bucket=bucket, Key="other")
    page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2, Prefix="u/")
    assert [u["Key"] for u in page["Uploads"]] == ["u/0", "u/1"]
    assert page["IsTruncated"]
    rest = s3.list_multipart_uploads(
        Bucket=bucket,
        Prefix="u/",
        KeyMarker=page["NextKeyMarker"],
        UploadIdMarker=page["NextUploadIdMarker"],
    )
    assert [u["Key"] for u in rest["Uploads"]] == ["u/2"]
    grouped = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["u/"]
    assert [u["Key"] for u in grouped["Uploads"]] == ["other"]
    s3.abort_multipart_upload(Bucket=bucket, Key="u/0", UploadId=ids[0])
    with pytest.raises(ClientError) as excinfo:
        s3.list_parts(Bucket=bucket, Key="u/0", UploadId=ids[0])
    assert error_code(excinfo) == "NoSuchUpload"
    with pytest.raises(ClientError) as upload_part:
        s3.upload_part(Bucket=bucket, Key="u/0", UploadId=ids[0], PartNumber=1, Body=b"x")
    assert error_code(upload_part) == "NoSuchUpload"


def test_list_parts_paged(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="many")["UploadId"]
    for number in range(1, 8):
        s3.upload_part(Bucket=bucket, Key="many", UploadId=upload_id, PartNumber=number, Body=b"p")
    page = s3.list_parts(Bucket=bucket, Key="many", UploadId=upload_id, MaxParts=3)
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2, 3]
    assert page["IsTruncated"]
    rest = s3.list_parts(
        Bucket=bucket, Key="many", UploadId=upload_id, PartNumberMarker=page["NextPartNumberMarker"]
    )
    assert [p["PartNumber"] for p in rest["Parts"]] == [4, 5, 6, 7]
    assert not rest["IsTruncated"]


def test_upload_part_copy_with_range(s3: Any, bucket: str) -> None:
    source = os.urandom(6 * MIB)
    s3.put_object(Bucket=bucket, Key="source", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="copied")["UploadId"]
    first = s3.upload_part_copy(
        Bucket=bucket,
        Key="copied",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "source"},
        CopySourceRange=f"bytes=0-{5 * MIB - 1}",
    )
    second = s3.upload_part_copy(
        Bucket=bucket,
        Key="copied",
        UploadId=upload_id,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "source"},
        CopySourceRange=f"bytes={5 * MIB}-{6 * MIB - 1}",
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="copied",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
                {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]},
            ]
        },
    )
    assert s3.get_object(Bucket=bucket, Key="copied")["Body"].read() == source


@pytest.mark.parametrize(
    ("algorithm", "checksum_type"),
    [
        ("CRC32", "COMPOSITE"),
        ("CRC32C", "FULL_OBJECT"),
        ("CRC64NVME", "FULL_OBJECT"),
        ("SHA256", "COMPOSITE"),
    ],
)
def test_multipart_checksums(s3: Any, bucket: str, algorithm: str, checksum_type: str) -> None:
    parts = [os.urandom(5 * MIB), b"last part"]
    result = upload(
        s3, bucket, "ck", parts, ChecksumAlgorithm=algorithm, ChecksumType=checksum_type
    )
    field = f"Checksum{algorithm}"
    whole = b"".join(parts)
    if checksum_type == "FULL_OBJECT":
        expected = checksums.checksum(algorithm, whole)
    else:
        digests = b"".join(base64.b64decode(checksums.checksum(algorithm, p)) for p in parts)
        expected = f"{checksums.checksum(algorithm, digests)}-2"
    assert result[field] == expected
    assert result["ChecksumType"] == checksum_type
    head = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert head[field] == expected
    assert s3.get_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")["Body"].read() == whole


def test_upload_part_wrong_checksum_rejected(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="bad", ChecksumAlgorithm="SHA256")[
        "UploadId"
    ]
    with pytest.raises(ClientError) as excinfo:
        s3.upload_part(
            Bucket=bucket,
            Key="bad",
            UploadId=upload_id,
            PartNumber=1,
            Body=b"abc",
            ChecksumSHA256=checksums.checksum("SHA256", b"abd"),
        )
    assert error_code(excinfo) == "BadDigest"
    assert s3.list_parts(Bucket=bucket, Key="bad", UploadId=upload_id).get("Parts", []) == []


def _uploaded_parts(
    s3: Any, bucket: str, key: str, parts: list[bytes], algorithm: str, checksum_type: str
) -> tuple[str, list[dict[str, Any]]]:
    upload_id = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm, ChecksumType=checksum_type
    )["UploadId"]
    done = []
    for number, body in enumerate(parts, 1):
        result = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm=algorithm,
        )
        field = f"Checksum{algorithm}"
        done.append({"PartNumber": number, "ETag": result["ETag"], field: result[field]})
    return upload_id, done


def test_complete_checks_the_full_object_checksum(s3: Any, bucket: str) -> None:
    """x-amz-checksum-<algorithm> on Complete is the whole object's checksum, not the body's."""
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), b"tail"]
    whole = checksums.checksum("CRC64NVME", b"".join(parts))
    upload_id, done = _uploaded_parts(s3, bucket, "full", parts, "CRC64NVME", "FULL_OBJECT")

    wrong = checksums.checksum("CRC64NVME", b"something else")
    with pytest.raises(ClientError) as excinfo:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="full",
            UploadId=upload_id,
            MultipartUpload={"Parts": done},
            ChecksumCRC64NVME=wrong,
            ChecksumType="FULL_OBJECT",
        )
    assert error_code(excinfo) == "BadDigest"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="full")
    # The upload is still there: nothing was committed.
    assert len(s3.list_parts(Bucket=bucket, Key="full", UploadId=upload_id)["Parts"]) == 3

    result = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="full",
        UploadId=upload_id,
        MultipartUpload={"Parts": done},
        ChecksumCRC64NVME=whole,
        ChecksumType="FULL_OBJECT",
    )
    assert result["ChecksumCRC64NVME"] == whole
    assert result["ChecksumType"] == "FULL_OBJECT"


@pytest.mark.parametrize("suffixed", [True, False])
def test_complete_checks_the_composite_checksum(s3: Any, bucket: str, suffixed: bool) -> None:
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), b"tail"]
    composite = checksums.composite("SHA256", [checksums.checksum("SHA256", p) for p in parts])
    assert composite.endswith("-3")
    upload_id, done = _uploaded_parts(s3, bucket, "comp", parts, "SHA256", "COMPOSITE")

    for wrong in (composite.replace("-3", "-4"), checksums.checksum("SHA256", b"x") + "-3"):
        with pytest.raises(ClientError) as excinfo:
            s3.complete_multipart_upload(
                Bucket=bucket,
                Key="comp",
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
                ChecksumSHA256=wrong,
            )
        assert error_code(excinfo) == "BadDigest"

    given = composite if suffixed else composite.rpartition("-")[0]
    result = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="comp",
        UploadId=upload_id,
        MultipartUpload={"Parts": done},
        ChecksumSHA256=given,
    )
    assert result["ChecksumSHA256"] == composite


def test_complete_checksum_of_another_algorithm_or_malformed(s3: Any, bucket: str) -> None:
    parts = [b"only part"]
    upload_id, done = _uploaded_parts(s3, bucket, "other", parts, "CRC32", "FULL_OBJECT")
    for extra in (
        {"ChecksumSHA256": checksums.checksum("SHA256", b"only part")},
        {"ChecksumCRC32": "not base64!"},
        {"ChecksumCRC32": checksums.checksum("CRC32", b"only part"), "ChecksumType": "COMPOSITE"},
    ):
        with pytest.raises(ClientError) as excinfo:
            s3.complete_multipart_upload(
                Bucket=bucket,
                Key="other",
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
                **extra,
            )
        assert error_code(excinfo) == "InvalidRequest", extra
    result = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="other",
        UploadId=upload_id,
        MultipartUpload={"Parts": done},
        ChecksumCRC32=checksums.checksum("CRC32", b"only part"),
    )
    assert result["ChecksumCRC32"] == checksums.checksum("CRC32", b"only part")


def test_a_repeated_complete_answers_as_the_first(s3: Any, bucket: str) -> None:
    """An SDK retrying a Complete whose reply was lost gets the same answer, not NoSuchUpload."""
    parts = [os.urandom(5 * MIB), b"tail"]
    upload_id, done = _uploaded_parts(s3, bucket, "again", parts, "SHA256", "COMPOSITE")
    complete = {
        "Bucket": bucket,
        "Key": "again",
        "UploadId": upload_id,
        "MultipartUpload": {"Parts": done},
    }
    first = s3.complete_multipart_upload(**complete)
    second = s3.complete_multipart_upload(**complete)
    assert second["ETag"] == first["ETag"] == multipart_etag(parts)
    assert second["ChecksumSHA256"] == first["ChecksumSHA256"]
    # Other parts, or another upload id, are still no such upload.
    with pytest.raises(ClientError) as excinfo:
        s3.complete_multipart_upload(**{**complete, "MultipartUpload": {"Parts": done[:1]}})
    assert error_code(excinfo) == "NoSuchUpload"
    with pytest.raises(ClientError) as excinfo:
        s3.complete_multipart_upload(
            **{**complete, "UploadId": f"{upload_id[:-1]}{'1' if upload_id[-1] == '0' else '0'}"}
        )
    assert error_code(excinfo) == "NoSuchUpload"
    # The record is not the client's to see, and does not keep the bucket from going.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["again"]
    s3.delete_object(Bucket=bucket, Key="again")
    s3.delete_bucket(Bucket=bucket)
