"""What server-side encryption costs: MiB/s of encrypting and decrypting a 64 MiB object in
the gateway's format (policy.sse_crypto: AES-256-GCM, 64 KiB chunks), in this process.

The plaintext goes through :class:`policy.sse_crypto.EncryptingPayload` (as an upload does,
including the MD5 and CRC64NVME every upload computes) and back through
:class:`policy.sse_crypto.DecryptingBody` (as a GET does); a plain digest pass over the same
bytes is the baseline an unencrypted upload pays anyway. Pieces are 512 KiB, as the
translators read them.

    .venv/bin/python -m benchmarks.sse_throughput [--size-mib N] [--repeats N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import AsyncIterator

import anyio

from core.digest import Digester
from core.streams import PayloadDigest
from policy.sse_crypto import CHUNK, DecryptingBody, EncryptingPayload, Segment

PIECE = 512 * 1024


class _Payload:
    """The plaintext as a payload stream, digested as the gateway digests an upload."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._digest: PayloadDigest | None = None

    @property
    def declared_size(self) -> int | None:
        return len(self._data)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        digester = Digester(["CRC64NVME"])
        view = memoryview(self._data)
        for at in range(0, len(view), PIECE):
            piece = bytes(view[at : at + PIECE])
            digester.update(piece)
            yield piece
        self._digest = digester.result()

    def digest(self) -> PayloadDigest:
        assert self._digest is not None
        return self._digest


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        view = memoryview(self._data)
        for at in range(0, len(view), PIECE):
            yield bytes(view[at : at + PIECE])

    async def aclose(self) -> None:
        return None


async def _measure(size: int) -> dict[str, float]:
    data = os.urandom(size)
    key = os.urandom(32)
    started = time.perf_counter()
    baseline = _Payload(data)
    async for _ in baseline:
        pass
    plain_s = time.perf_counter() - started

    started = time.perf_counter()
    payload = EncryptingPayload(_Payload(data), key, 0, hide_md5=False)
    stored = b"".join([piece async for piece in payload])
    encrypt_s = time.perf_counter() - started

    started = time.perf_counter()
    segment = Segment(0, size, 0, (size - 1) // CHUNK, 0, size)
    body = DecryptingBody(_Body(stored), key, [segment])
    total = 0
    async for piece in body:
        total += len(piece)
    decrypt_s = time.perf_counter() - started
    assert total == size
    mib = size / (1024 * 1024)
    return {
        "digest_only_mib_s": mib / plain_s,
        "encrypt_mib_s": mib / encrypt_s,
        "decrypt_mib_s": mib / decrypt_s,
        "stored_overhead_pct": 100.0 * (len(stored) - size) / size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    runs = [anyio.run(_measure, args.size_mib * 1024 * 1024) for _ in range(args.repeats)]
    best = {name: max(run[name] for run in runs) for name in runs[0]}
    best["stored_overhead_pct"] = runs[0]["stored_overhead_pct"]
    if args.json:
        print(json.dumps(best))
        return 0
    print(f"{args.size_mib} MiB, best of {args.repeats}:", file=sys.stderr)
    print("| pass | MiB/s |\n|---|---|")
    print(f"| digest only (MD5 + CRC64NVME, every upload) | {best['digest_only_mib_s']:.0f} |")
    print(f"| encrypt (digest + AES-256-GCM) | {best['encrypt_mib_s']:.0f} |")
    print(f"| decrypt (AES-256-GCM) | {best['decrypt_mib_s']:.0f} |")
    print(f"\nstored size overhead: {best['stored_overhead_pct']:.3f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
