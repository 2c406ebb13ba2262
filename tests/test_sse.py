"""Server-side encryption over HTTP (boto3 against the in-process gateway, memory store):
SSE-S3, SSE-KMS and SSE-C on every operation that takes them, the bucket default, the
stored bytes being ciphertext, ranges at chunk edges, tampering, and every refusal."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, IncompleteReadError, ResponseStreamingError
from urllib3.exceptions import ProtocolError

from gateway.settings import Settings
from policy.encryption_meta import META_KEY
from policy.sse_crypto import CHUNK, HEADER, TAG, cipher_size
from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway, in_process_gateway
from tests.support.s3_errors import error_code, status
from translators.memory.backend import MemoryBackend
from translators.memory.store import Stored

KEY = os.urandom(32)
OTHER_KEY = os.urandom(32)


def sse_c(key: bytes = KEY) -> dict[str, Any]:
    """boto3's SSE-C arguments (it base64-encodes the key and adds its MD5 itself)."""
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    settings = Settings(
        log_level="warning", sse_c_require_tls=False, kms_key_ids=("site-key", "alias/other")
    )
    with in_process_gateway(tmp_path_factory.mktemp("sse") / "data", settings) as server:
        yield server


@pytest.fixture
def s3(gateway: InProcessGateway) -> Any:
    return make_s3_client(gateway)


@pytest.fixture
def bucket(s3: Any, bucket_name: Callable[[], str]) -> str:
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    return name


def translator(gateway: InProcessGateway) -> MemoryBackend:
    backend: Any = gateway.app.stack.backend
    while not isinstance(backend, MemoryBackend):
        backend = backend.inner
    return backend


def stored(gateway: InProcessGateway, bucket: str, key: str) -> Stored:
    store = translator(gateway).store
    with store.bucket(bucket) as found:
        return found.objects[key]


def tamper(gateway: InProcessGateway, bucket: str, key: str, at: int) -> None:
    store = translator(gateway).store
    with store.bucket(bucket) as found:
        old = found.objects[key]
        data = bytearray(old.data)
        data[at] ^= 0x01
        found.objects[key] = Stored(old.info, bytes(data))


def body_of(size: int) -> bytes:
    return (hashlib.sha256(b"seed").digest() * (size // 32 + 1))[:size]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_sse_s3_round_trip_stores_ciphertext(
    s3: Any, gateway: InProcessGateway, bucket: str, size: int
) -> None:
    data = body_of(size)
    put = s3.put_object(Bucket=bucket, Key="k", Body=data, ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    raw = stored(gateway, bucket, "k").data
    assert len(raw) == cipher_size(size)
    if size >= 16:
        assert data[:16] not in raw
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ContentLength"] == size
    assert got["ServerSideEncryption"] == "AES256"
    assert got["ETag"] == put["ETag"]
    sums = {k: v for k, v in put.items() if k.startswith("Checksum") and k != "ChecksumType"}
    assert sums
    assert {k: got.get(k) for k in sums} == sums
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["ContentLength"] == size
    assert head["ServerSideEncryption"] == "AES256"
    assert "pagewright-sse" not in head["Metadata"]
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("k", size)]


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (0, 0),
        (CHUNK - 1, CHUNK),
        (CHUNK, CHUNK),
        (CHUNK - 3, 2 * CHUNK + 3),
        (2 * CHUNK, 3 * CHUNK - 1),
        (3 * CHUNK, 3 * CHUNK + 16),
        (20 * CHUNK + 5, 20 * CHUNK + 70000),  # past the skip limit: header read apart
    ],
)
def test_ranges_at_chunk_edges(s3: Any, bucket: str, first: int, last: int) -> None:
    data = body_of(24 * CHUNK + 100)
    s3.put_object(Bucket=bucket, Key="r", Body=data, ServerSideEncryption="AES256")
    got = s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={first}-{last}")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {first}-{last}/{len(data)}"
    assert got["Body"].read() == data[first : last + 1]


def test_suffix_and_unsatisfiable_ranges(s3: Any, bucket: str) -> None:
    data = body_of(CHUNK + 10)
    s3.put_object(Bucket=bucket, Key="r", Body=data, ServerSideEncryption="AES256")
    got = s3.get_object(Bucket=bucket, Key="r", Range="bytes=-20")
    assert got["Body"].read() == data[-20:]
    with pytest.raises(ClientError) as beyond:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(data)}-")
    assert error_code(beyond) == "InvalidRange"
    assert beyond.value.response["Error"].get("ActualObjectSize") == str(len(data))


#: How a reply cut short (tampering found after the headers were sent) reaches boto3.
CUT = (ResponseStreamingError, IncompleteReadError, ProtocolError)


@pytest.mark.parametrize("at", [0, HEADER - 1, HEADER + 5, HEADER + CHUNK - 1])
def test_tampering_at_the_start_is_an_error(
    s3: Any, gateway: InProcessGateway, bucket: str, at: int
) -> None:
    data = body_of(3 * CHUNK)
    s3.put_object(Bucket=bucket, Key="t", Body=data, ServerSideEncryption="AES256")
    tamper(gateway, bucket, "t", at)
    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket=bucket, Key="t")
    assert status(failed) == 500
    assert "integrity" in failed.value.response["Error"]["Message"]


@pytest.mark.parametrize("at", [HEADER + CHUNK + TAG + 3, -1])
def test_tampering_later_cuts_the_reply(
    s3: Any, gateway: InProcessGateway, bucket: str, at: int
) -> None:
    data = body_of(3 * CHUNK)
    s3.put_object(Bucket=bucket, Key="t", Body=data, ServerSideEncryption="AES256")
    size = len(stored(gateway, bucket, "t").data)
    tamper(gateway, bucket, "t", at % size)
    body = s3.get_object(Bucket=bucket, Key="t")["Body"]
    with pytest.raises(CUT):
        body.read()


def test_tampering_later_never_returns_wrong_bytes(
    s3: Any, gateway: InProcessGateway, bucket: str
) -> None:
    data = body_of(4 * CHUNK)
    s3.put_object(Bucket=bucket, Key="t", Body=data, ServerSideEncryption="AES256")
    tamper(gateway, bucket, "t", HEADER + 3 * (CHUNK + TAG) + 7)
    got = s3.get_object(Bucket=bucket, Key="t")
    pieces: list[bytes] = []

    def read_all() -> None:
        pieces.extend(got["Body"].iter_chunks(4096))

    with pytest.raises(CUT):
        read_all()
    received = b"".join(pieces)
    assert received == data[: len(received)]
    assert len(received) <= 3 * CHUNK
    # A range that avoids the tampered chunk still reads.
    part = s3.get_object(Bucket=bucket, Key="t", Range=f"bytes=0-{CHUNK - 1}")
    assert part["Body"].read() == data[:CHUNK]


def test_truncation_is_detected(s3: Any, gateway: InProcessGateway, bucket: str) -> None:
    data = body_of(2 * CHUNK + 5)
    s3.put_object(Bucket=bucket, Key="cut", Body=data, ServerSideEncryption="AES256")
    store = translator(gateway).store
    with store.bucket(bucket) as found:
        old = found.objects["cut"]
        keep = HEADER + 2 * (CHUNK + TAG)  # drop the final chunk: two whole chunks remain
        info = old.info.__class__(**{**old.info.__dict__, "size": keep})
        found.objects["cut"] = Stored(info, old.data[:keep])
    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket=bucket, Key="cut", Range=f"bytes={CHUNK}-{2 * CHUNK - 1}")
    assert status(failed) == 500
    body = s3.get_object(Bucket=bucket, Key="cut")["Body"]
    with pytest.raises(CUT):
        body.read()


def test_sse_kms(s3: Any, gateway: InProcessGateway, bucket: str) -> None:
    data = b"kms bytes" * 1000
    put = s3.put_object(
        Bucket=bucket, Key="k", Body=data, ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/other"
    )
    assert put["ServerSideEncryption"] == "aws:kms"
    assert put["SSEKMSKeyId"] == "alias/other"
    assert put["ETag"] != f'"{hashlib.md5(data).hexdigest()}"'  # as S3: not the MD5
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == data
    assert got["SSEKMSKeyId"] == "alias/other"
    default = s3.put_object(Bucket=bucket, Key="d", Body=data, ServerSideEncryption="aws:kms")
    assert default["SSEKMSKeyId"] == "site-key"
    assert data[:32] not in stored(gateway, bucket, "k").data
    with pytest.raises(ClientError) as unknown:
        s3.put_object(
            Bucket=bucket, Key="u", Body=data, ServerSideEncryption="aws:kms", SSEKMSKeyId="nope"
        )
    assert error_code(unknown) == "KMS.NotFoundException"
    assert status(unknown) == 400


def test_sse_c_round_trip(s3: Any, gateway: InProcessGateway, bucket: str) -> None:
    data = body_of(2 * CHUNK + 3)
    put = s3.put_object(Bucket=bucket, Key="c", Body=data, **sse_c())
    key_md5 = base64.b64encode(hashlib.md5(KEY).digest()).decode()
    assert put["SSECustomerAlgorithm"] == "AES256"
    assert put["SSECustomerKeyMD5"] == key_md5
    assert put["ETag"] != f'"{hashlib.md5(data).hexdigest()}"'
    assert "ServerSideEncryption" not in put
    raw = stored(gateway, bucket, "c")
    assert data[:32] not in raw.data
    assert KEY.hex() not in repr(raw.info)
    assert base64.b64encode(KEY).decode() not in repr(raw.info)
    got = s3.get_object(Bucket=bucket, Key="c", **sse_c())
    assert got["Body"].read() == data
    assert got["SSECustomerKeyMD5"] == key_md5
    assert got["ETag"] == put["ETag"]
    ranged = s3.get_object(Bucket=bucket, Key="c", Range="bytes=65530-65545", **sse_c())
    assert ranged["Body"].read() == data[65530:65546]
    head = s3.head_object(Bucket=bucket, Key="c", **sse_c())
    assert head["ContentLength"] == len(data)
    assert head["SSECustomerKeyMD5"] == key_md5


@pytest.mark.parametrize("call", ["get", "head"])
def test_sse_c_wrong_or_missing_key(s3: Any, bucket: str, call: str) -> None:
    s3.put_object(Bucket=bucket, Key="c", Body=b"secret", **sse_c())
    read = s3.get_object if call == "get" else s3.head_object
    with pytest.raises(ClientError) as missing:
        read(Bucket=bucket, Key="c")
    assert status(missing) == 400
    with pytest.raises(ClientError) as wrong:
        read(Bucket=bucket, Key="c", **sse_c(OTHER_KEY))
    assert status(wrong) == 403
    s3.put_object(Bucket=bucket, Key="plain", Body=b"plain")
    with pytest.raises(ClientError) as needless:
        read(Bucket=bucket, Key="plain", **sse_c())
    assert status(needless) == 400
    if call == "get":
        assert error_code(missing) == "InvalidRequest"
        assert error_code(wrong) == "AccessDenied"
        assert error_code(needless) == "InvalidRequest"


def test_copy_between_modes(s3: Any, bucket: str) -> None:
    data = body_of(CHUNK * 2 + 1)
    s3.put_object(Bucket=bucket, Key="src", Body=data, **sse_c())
    copied = s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceSSECustomerAlgorithm="AES256",
        CopySourceSSECustomerKey=KEY,
        ServerSideEncryption="AES256",
    )
    assert copied["ServerSideEncryption"] == "AES256"
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data
    recopied = s3.copy_object(
        Bucket=bucket, Key="dst2", CopySource={"Bucket": bucket, "Key": "dst"}, **sse_c(OTHER_KEY)
    )
    assert recopied["SSECustomerAlgorithm"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="dst2", **sse_c(OTHER_KEY))["Body"].read() == data
    with pytest.raises(ClientError) as no_source_key:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src"})
    assert error_code(no_source_key) == "InvalidRequest"
    # Re-encrypting in place is a legal self-copy.
    s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource={"Bucket": bucket, "Key": "dst"},
        ServerSideEncryption="aws:kms",
    )
    assert s3.head_object(Bucket=bucket, Key="dst")["ServerSideEncryption"] == "aws:kms"


def test_bucket_default(s3: Any, gateway: InProcessGateway, bucket: str) -> None:
    with pytest.raises(ClientError) as absent:
        s3.get_bucket_encryption(Bucket=bucket)
    assert error_code(absent) == "ServerSideEncryptionConfigurationNotFoundError"
    assert status(absent) == 404
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    put = s3.put_object(Bucket=bucket, Key="d", Body=b"defaulted" * 100)
    assert put["ServerSideEncryption"] == "AES256"
    assert b"defaulted" not in stored(gateway, bucket, "d").data
    # A request's own encryption wins over the default.
    own = s3.put_object(Bucket=bucket, Key="c", Body=b"mine", **sse_c())
    assert own["SSECustomerAlgorithm"] == "AES256"
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": "alias/other",
                    }
                }
            ]
        },
    )
    kms = s3.put_object(Bucket=bucket, Key="k", Body=b"kms default")
    assert kms["SSEKMSKeyId"] == "alias/other"
    with pytest.raises(ClientError) as unknown:
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": "missing",
                        }
                    }
                ]
            },
        )
    assert error_code(unknown) == "KMS.NotFoundException"
    s3.delete_bucket_encryption(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_encryption(Bucket=bucket)
    plain = s3.put_object(Bucket=bucket, Key="p", Body=b"plain now")
    assert "ServerSideEncryption" not in plain
    assert stored(gateway, bucket, "p").data == b"plain now"
    # Objects keep how they were stored.
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"defaulted" * 100
    s3.delete_object(Bucket=bucket, Key="d")
    for key in ("c", "k", "p"):
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)  # the reserved marker does not keep it


def test_reserved_metadata_is_refused(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={META_KEY: "{}"})
    assert error_code(refused) == "InvalidArgument"


def test_stored_metadata_holds_no_key(gateway: InProcessGateway, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", **sse_c())
    entry = stored(gateway, bucket, "k").info.user_metadata[META_KEY]
    assert base64.b64encode(KEY).decode() not in entry
    assert KEY.hex() not in entry


def test_data_dir_key_is_used(gateway: InProcessGateway) -> None:
    assert (Path(gateway.data_dir) / "master.key").is_file()


@pytest.mark.server
def test_filesystem_store_holds_no_plaintext(tmp_path: Path) -> None:
    """The real server over its default filesystem store, over TLS (SSE-C needs it): no
    stored file holds the plaintext, and the log (at debug) holds no customer key."""
    from tests.support.servers import make_tls_files, running_gateway

    marker = b"PLAINTEXT-MARKER-" * 4096
    with running_gateway(
        tmp_path / "data", env={"PWG_LOG_LEVEL": "debug"}, tls=make_tls_files(tmp_path)
    ) as server:
        client = make_s3_client(server)
        client.create_bucket(Bucket="site")
        client.put_object(Bucket="site", Key="s3", Body=marker, ServerSideEncryption="AES256")
        client.put_object(Bucket="site", Key="c", Body=marker, **sse_c())
        with pytest.raises(ClientError) as missing:
            client.get_object(Bucket="site", Key="c")
        assert error_code(missing) == "InvalidRequest"
        assert client.get_object(Bucket="site", Key="s3")["Body"].read() == marker
        assert client.get_object(Bucket="site", Key="c", **sse_c())["Body"].read() == marker
        stored_files = [p for p in (tmp_path / "data" / "storage").rglob("*") if p.is_file()]
        assert stored_files
        for path in stored_files:
            assert b"PLAINTEXT-MARKER" not in path.read_bytes(), path
        log = server.log_path.read_text()
    assert base64.b64encode(KEY).decode() not in log
    assert KEY.hex() not in log


def test_empty_object_by_part_and_range(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="e", Body=b"", ServerSideEncryption="AES256")
    got = s3.get_object(Bucket=bucket, Key="e", PartNumber=1)
    assert got["Body"].read() == b""
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as empty_range:
        s3.get_object(Bucket=bucket, Key="e", Range="bytes=0-0")
    assert error_code(empty_range) == "InvalidRange"
    data = body_of(100)
    s3.put_object(Bucket=bucket, Key="one", Body=data, ServerSideEncryption="AES256")
    whole = s3.get_object(Bucket=bucket, Key="one", PartNumber=1)
    assert whole["Body"].read() == data
    assert whole["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as beyond:
        s3.get_object(Bucket=bucket, Key="one", PartNumber=2)
    assert error_code(beyond) == "InvalidPartNumber"
