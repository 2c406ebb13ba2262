"""Helpers shared by the real-client end-to-end tests: test data, trees, subprocess runs."""

from __future__ import annotations

import filecmp
import hashlib
import os
import random
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

MiB = 1024 * 1024

#: A tree with nested directories, an empty file and a name with a space, relative path -> size.
TREE: Mapping[str, int] = {
    "index.html": 1200,
    "empty.txt": 0,
    "css/site.css": 3000,
    "img/logo one.png": 70_000,
    "docs/a/b/deep.txt": 10,
    "docs/a/page.html": 4096,
    "docs/readme.md": 512,
}


def data(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (incompressible, so nothing is accidentally equal)."""
    return random.Random(seed).randbytes(size)


def write_file(path: Path, size: int, seed: int = 0) -> bytes:
    body = data(size, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return body


def write_tree(root: Path, tree: Mapping[str, int] = TREE) -> dict[str, bytes]:
    """Write ``tree`` under ``root``; return relative path (with ``/``) -> contents.

    The files are dated an hour back, so a sync tool that compares modification times never
    sees a local file as newer than its fresh upload (listings carry whole seconds only).
    """
    written = {}
    an_hour_ago = time.time() - 3600
    for seed, (rel, size) in enumerate(tree.items()):
        written[rel] = write_file(root / rel, size, seed)
        os.utime(root / rel, (an_hour_ago, an_hour_ago))
    return written


def tree_files(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root``, relative path (with ``/``) -> contents."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def assert_same_tree(left: Path, right: Path) -> None:
    """Both trees hold the same files with the same bytes (compared byte for byte)."""
    pending = [filecmp.dircmp(left, right)]
    while pending:
        comparison = pending.pop()
        assert comparison.left_only == [], f"only in {comparison.left}: {comparison.left_only}"
        assert comparison.right_only == [], f"only in {comparison.right}: {comparison.right_only}"
        _, mismatch, errors = filecmp.cmpfiles(
            comparison.left, comparison.right, comparison.common_files, shallow=False
        )
        assert mismatch == [], f"differ under {comparison.left}: {mismatch}"
        assert errors == [], f"unreadable under {comparison.left}: {errors}"
        pending.extend(comparison.subdirs.values())


def md5_hex(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def multipart_etag(body: bytes, part_size: int) -> str:
    """The ETag S3 gives a multipart object: MD5 of the parts' MD5s, dash, part count."""
    parts = [body[i : i + part_size] for i in range(0, len(body), part_size)] or [b""]
    digests = b"".join(hashlib.md5(part, usedforsecurity=False).digest() for part in parts)
    return f"{md5_hex(digests)}-{len(parts)}"


def run(
    command: Sequence[str | Path], env: Mapping[str, str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a client; on an unexpected exit status fail with its full output."""
    completed = run_binary(command, env, check=check)
    return subprocess.CompletedProcess(
        completed.args,
        completed.returncode,
        completed.stdout.decode(errors="replace"),
        completed.stderr.decode(errors="replace"),
    )


def run_binary(
    command: Sequence[str | Path], env: Mapping[str, str], *, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """:func:`run` with stdout and stderr kept as bytes."""
    completed = subprocess.run(
        [str(part) for part in command], env=dict(env), capture_output=True, check=False
    )
    if check and completed.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} exited {completed.returncode}\n"
            f"stdout:\n{completed.stdout[:4000]!r}\nstderr:\n{completed.stderr.decode(errors='replace')}"
        )
    return completed
