"""Byte ranges: as the client asked (:class:`RangeSpec`) and as resolved against an object
(:class:`ByteRange`)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import S3Error


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range ``start..end`` already resolved against an object size."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class RangeSpec:
    """A single HTTP range as the client asked: ``first-last``, ``first-`` or ``-suffix``."""

    first: int | None
    last: int | None

    def resolve(self, size: int) -> ByteRange:
        """The range within an object of ``size`` bytes; ``InvalidRange`` when unsatisfiable."""
        if self.first is None:
            suffix = self.last or 0
            if suffix == 0 or size == 0:
                raise _invalid_range(size)
            return ByteRange(max(0, size - suffix), size - 1)
        if self.first >= size:
            raise _invalid_range(size)
        last = size - 1 if self.last is None else min(self.last, size - 1)
        return ByteRange(self.first, last)


def _invalid_range(size: int) -> S3Error:
    return S3Error(
        "InvalidRange",
        headers={"Content-Range": f"bytes */{size}"},
        ActualObjectSize=str(size),
    )
