"""What the Azure translator can leave behind, and its sweep (:class:`translators.base.Sweeper`).

A crash, a kill or a failed best-effort cleanup can leave, under ``.pagewright/uploads/``
(:mod:`translators.azure.records`):

* **part records whose upload record is gone**: ending an upload deletes its record first
  (the upload is gone from then on), then its part records, best effort; a process killed
  in between, or a failed delete, leaves them, and so does an UploadPart that finished
  after its upload had ended;
* **upload records (and their parts) of a bucket whose marker is gone**: a
  CreateMultipartUpload racing DeleteBucket, or a bucket deletion killed midway. No
  listing of uploads reaches them again, so the abandoned-upload job never would.

:func:`sweep` deletes those last written (blob Last-Modified) before the cutoff; it needs
one pass over the sorted record names, holding only the record it is in.

Not swept, because Azure removes them itself: **uncommitted blocks**, staged by an
interrupted PutObject or by the parts of an aborted, completed-without-them or abandoned
upload. They are staged on the key's own blob (see :mod:`translators.azure.backend`), so
Azure drops them at that blob's next commit, or garbage-collects them after 7 days; there
is no call that deletes only them (deleting the blob would delete its committed version,
and the staged parts of a live upload on the same key). The translator writes no
temporary blobs.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Final

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from translators.azure.errors import map_errors
from translators.azure.store import AzureStore

log = logging.getLogger("pagewright.translators.azure")

#: Listing page size (Azure's maximum).
_PAGE: Final = 5000


async def sweep(store: AzureStore, older_than: datetime, limit: int) -> int:
    """Delete up to ``limit`` orphaned part records and records of deleted buckets last
    written before ``older_than`` (see the module docs); how many were deleted."""
    if limit <= 0:
        return 0
    area = store.namespace.system("uploads").name + "/"
    container = store.container(store.namespace.container)
    alive: dict[str, bool] = {}
    upload: tuple[str, str] | None = None  # the (bucket, upload id) whose record was last seen
    removed = 0
    with map_errors():
        blobs = container.list_blobs(name_starts_with=area, results_per_page=_PAGE)
        async for blob in blobs:
            bucket, _, rest = str(blob.name)[len(area) :].partition("/")
            upload_id, slash, _ = rest.partition("/")
            if not slash:  # an upload record: names sort right before their parts' names
                upload = (bucket, upload_id)
                if await _bucket_alive(store, bucket, alive) or blob.last_modified >= older_than:
                    continue
                upload = None
            elif (bucket, upload_id) == upload or blob.last_modified >= older_than:
                continue
            if await _delete(container, str(blob.name)):
                removed += 1
                if removed >= limit:
                    break
    if removed:
        log.info("Azure: swept %d leftover upload records", removed)
    return removed


async def _bucket_alive(store: AzureStore, bucket: str, alive: dict[str, bool]) -> bool:
    """Whether ``bucket``'s marker exists (read once per sweep)."""
    if bucket not in alive:
        marker = store.blob(store.namespace.bucket_marker(bucket))
        alive[bucket] = await store.properties(marker) is not None
    return alive[bucket]


async def _delete(container: ContainerClient, name: str) -> bool:
    """Delete one blob; False when it was gone already."""
    with contextlib.suppress(ResourceNotFoundError):
        await container.delete_blob(name)
        return True
    return False
