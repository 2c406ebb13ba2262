"""Real storage faults for tests: small volumes that fill up, and volumes that turn read-only
under a running gateway. No mocks: the kernel produces the errors.

* :func:`tmpfs`: a tmpfs of a few MiB mounted on a directory (fill it with :func:`fill`).
* :func:`ext4_volume`: an ext4 image loop-mounted with ``errors=remount-ro``;
  :func:`fail_volume` makes ext4 record an error (``/sys/fs/ext4/<dev>/trigger_fs_error``),
  and the file system remounts itself read-only, as on a failing disk. (A plain
  ``mount -o remount,ro`` is refused while the gateway holds files open for writing.)

Mounting needs root. If it is not permitted the test fails under ``CI=true`` and skips
otherwise (as :func:`tests.support.servers.require_tool` does for missing tools). Every volume is
unmounted when its context exits; stop the gateway using it before that.

Network faults: :class:`TcpProxy` sits between the gateway and a server (Redis) and cuts
the connection on demand.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.support.servers import require_tool

MiB = 1024 * 1024


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


@contextmanager
def _mounted(directory: Path, *mount_args: str) -> Iterator[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    done = _run(require_tool("mount"), *mount_args, str(directory))
    if done.returncode != 0:
        _unavailable(f"cannot mount a test volume on {directory}: {done.stderr.strip()}")
    try:
        yield directory
    finally:
        if _run("umount", str(directory)).returncode != 0:
            _run("umount", "-l", str(directory))


@contextmanager
def tmpfs(directory: Path, size: int) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted on ``directory`` for the context's duration."""
    with _mounted(directory, "-t", "tmpfs", "-o", f"size={size}", "tmpfs") as mounted:
        yield mounted


@contextmanager
def ext4_volume(directory: Path, size: int) -> Iterator[Path]:
    """An ext4 file system of ``size`` bytes (an image beside ``directory``, loop-mounted on
    it with ``errors=remount-ro``) for the context's duration."""
    image = directory.parent / f"{directory.name}.ext4"
    with open(image, "wb") as handle:
        handle.truncate(size)
    made = _run(require_tool("mkfs.ext4"), "-q", "-F", str(image))
    if made.returncode != 0:
        _unavailable(f"mkfs.ext4 failed: {made.stderr.strip()}")
    try:
        with _mounted(directory, "-t", "ext4", "-o", "loop,errors=remount-ro", str(image)) as mp:
            yield mp
    finally:
        image.unlink(missing_ok=True)


def fail_volume(directory: Path) -> None:
    """Make the ext4 volume mounted on ``directory`` hit an error: it remounts read-only."""
    source = _run("findmnt", "-no", "SOURCE", str(directory)).stdout.strip()
    trigger = Path("/sys/fs/ext4") / os.path.basename(source) / "trigger_fs_error"
    if not trigger.exists():
        _unavailable(f"{trigger} does not exist: cannot fail the test volume")
    trigger.write_text("pagewright test: simulated disk failure\n")
    options = _run("findmnt", "-no", "OPTIONS", str(directory)).stdout
    assert options.startswith("ro") or "emergency_ro" in options, options


def fill(directory: Path) -> Path:
    """Write a filler file under ``directory`` until its volume has no byte left."""
    filler = directory / "filler"
    with open(filler, "ab", buffering=0) as handle:
        for size in (MiB, 4096, 1):
            block = b"\0" * size
            while True:
                try:
                    handle.write(block)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
    return filler


def free_bytes(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def unfill(filler: Path) -> None:
    with suppress(FileNotFoundError):
        filler.unlink()


class TcpProxy:
    """A TCP proxy on a free 127.0.0.1 port to ``target`` (host, port), for network faults
    between the gateway and a server: :meth:`cut` drops every connection and refuses new
    ones (connections are accepted and closed at once) until :meth:`restore`; :meth:`stall`
    keeps connections open but forwards nothing (the server seems to hang) until
    :meth:`restore`, which then drops the stalled connections.

    Runs in a daemon thread per connection direction; :meth:`close` stops it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._stalled = False
        self._closed = False
        threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Drop every proxied connection; refuse new ones until :meth:`restore`."""
        with self._lock:
            self._cut = True
            for sock in self._open:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def stall(self) -> None:
        """Forward nothing in either direction until :meth:`restore`."""
        with self._lock:
            self._stalled = True

    def restore(self) -> None:
        """Forward again; connections that were stalled are dropped (bytes were lost)."""
        if self._stalled:
            self.cut()
        with self._lock:
            self._cut = False
            self._stalled = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._cut:
                    client.close()
                    continue
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    client.close()
                    continue
                upstream.settimeout(None)
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self._stalled:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                for sock in (source, sink):
                    if sock in self._open:
                        self._open.discard(sock)
                        with suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)
                        sock.close()
