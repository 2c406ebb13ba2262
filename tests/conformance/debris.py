"""Real leftovers of the S3 and Azure translators, planted straight through their SDKs: what
a process killed mid-write or a failed cleanup leaves (see :mod:`translators.s3.sweep` and
:mod:`translators.azure.sweep`). Each ``*_debris`` returns ``(plant, leftovers)``: ``plant``
leaves the debris beside gateway bucket ``bucket``; ``leftovers`` names what of it remains.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from translators.azure.records import PartRecord, encode_part, encode_upload
from translators.base import PartInfo, UploadInfo, WriteMetadata
from translators.s3.backend import S3Backend
from translators.s3.codec import native_upload_hash

if TYPE_CHECKING:
    from translators.azure.backend import AzureBackend

Debris = tuple[Callable[[str], None], Callable[[], list[str]]]


def s3_debris(backend: S3Backend) -> Debris:
    """A native upload with one part and no note (a streamed PutObject killed midway), the
    note of an upload that ended (its deletion failed) and a part note of that upload."""
    client: Any = backend.store.client
    namespace = backend.namespace
    planted: list[str] = []
    uploads: list[tuple[str, str]] = []  # (backend bucket, object name) of native uploads

    def plant(bucket: str) -> None:
        where = namespace.object(bucket, "interrupted-put")
        native = client.create_multipart_upload(Bucket=where.container, Key=where.name)
        client.upload_part(
            Bucket=where.container,
            Key=where.name,
            UploadId=native["UploadId"],
            PartNumber=1,
            Body=b"streamed before the kill",
        )
        uploads.append((where.container, where.name))
        ended = native_upload_hash("an-upload-that-ended")
        note = namespace.system("uploads", bucket, f"{ended}.00{'0' * 24}").name
        part_note = namespace.system("parts", ended, "00001.W10=").name
        for name in (note, part_note):
            client.put_object(Bucket=namespace.container, Key=name, Body=b"")
        planted.extend((note, part_note))

    def leftovers() -> list[str]:
        left: list[str] = []
        for container, name in uploads:
            try:
                page = client.list_multipart_uploads(Bucket=container, Prefix=name)
            except ClientError as error:  # rclone answers NoSuchUpload when there are none
                if error.response["Error"]["Code"] != "NoSuchUpload":
                    raise
                page = {}
            left += [f"upload:{name}" for u in page.get("Uploads", []) if u["Key"] == name]
        system = namespace.system("").name
        page = client.list_objects_v2(Bucket=namespace.container, Prefix=system)
        stored = {str(item["Key"]) for item in page.get("Contents", [])}
        return left + [name for name in planted if name in stored]

    return plant, leftovers


def azure_debris(backend: AzureBackend, connection_string: str) -> Debris:
    """A part record of an upload whose record is gone (the upload ended, the part records'
    deletion did not), and an upload record with its part record in a bucket that was
    deleted meanwhile (CreateMultipartUpload racing DeleteBucket)."""
    from azure.storage.blob import BlobServiceClient

    namespace = backend.namespace
    planted: list[str] = []
    now = datetime.now(UTC)

    def plant(bucket: str) -> None:
        ended, raced = "e" * 32, "f" * 32
        upload = UploadInfo("k", raced, now, WriteMetadata())
        part = encode_part(PartRecord(PartInfo(1, 5, "etag", now), "00000000", 1))
        records = {
            namespace.system("uploads", bucket, ended, "00001").name: part,
            namespace.system("uploads", "a-deleted-bucket", raced).name: encode_upload(upload),
            namespace.system("uploads", "a-deleted-bucket", raced, "00001").name: part,
        }
        with BlobServiceClient.from_connection_string(connection_string) as service:
            container = service.get_container_client(namespace.container)
            for name, metadata in records.items():
                container.upload_blob(name, b"", metadata=metadata, overwrite=True)
        planted.extend(records)

    def leftovers() -> list[str]:
        with BlobServiceClient.from_connection_string(connection_string) as service:
            container = service.get_container_client(namespace.container)
            system = namespace.system("").name
            stored = {blob.name for blob in container.list_blobs(name_starts_with=system)}
        return [name for name in planted if name in stored]

    return plant, leftovers
