"""What a multipart completion will assemble, read from the backend before it completes."""

from __future__ import annotations

from typing import Final

from core.context import RequestContext
from translators.base import Backend, CompletedPart

_PARTS_PAGE: Final = 1000


async def named_parts_size(
    backend: Backend,
    ctx: RequestContext,
    bucket: str,
    key: str,
    upload_id: str,
    parts: list[CompletedPart],
) -> int:
    """The size the named ``parts`` of the upload add up to, as ``backend`` stores them
    (a part not stored counts 0: the completion itself rejects it)."""
    named = {part.part_number for part in parts}
    size, marker = 0, 0
    while True:
        _, page = await backend.list_parts(ctx, bucket, key, upload_id, marker, _PARTS_PAGE)
        size += sum(p.size for p in page.parts if p.part_number in named)
        if page.next_part_number_marker is None:
            return size
        marker = page.next_part_number_marker
