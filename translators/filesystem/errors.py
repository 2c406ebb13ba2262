"""The filesystem translator's one error map: OS and SQLite failures -> S3 errors.

A storage fault is reported as what it is, so clients and operators can act on it:

* no space left (``ENOSPC``, ``EDQUOT``; SQLite's ``SQLITE_FULL``) -> 507
  ``InsufficientStorage``: retrying does not help until space is freed, and S3 clients do
  not retry a 507;
* a read-only store (``EROFS``; ``SQLITE_READONLY``), an I/O error (``EIO``;
  ``SQLITE_IOERR``), a store whose files are gone (``ENOENT``; ``SQLITE_CANTOPEN``), access
  refused (``EACCES``, ``EPERM``), a damaged or busy catalogue -> 503 ``ServiceUnavailable``
  with a message naming the fault (never a path).

Anything else is not a storage fault and propagates unchanged (the app logs it and answers
``InternalError``). Each mapped fault is logged at ERROR with its cause and the request id:
the client's message is terse, the operator's log line says what broke.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

from core.context import RequestContext
from core.errors import S3Error

log = logging.getLogger("pagewright.filesystem")

_P = ParamSpec("_P")
_R = TypeVar("_R")
_S = TypeVar("_S")

FULL: Final = "The storage volume is full."
READ_ONLY: Final = "The storage is read-only: writes are refused."
IO_ERROR: Final = "The storage reported an I/O error."
MISSING: Final = "The storage directory is missing: the store cannot be used."
DENIED: Final = "The gateway may not write to its storage directory."
DAMAGED: Final = "The storage catalogue is damaged."
BUSY: Final = "The storage catalogue is busy."

_OS_FAULTS: Final[dict[int, tuple[str, str]]] = {
    errno.ENOSPC: ("InsufficientStorage", FULL),
    errno.EDQUOT: ("InsufficientStorage", FULL),
    errno.EROFS: ("ServiceUnavailable", READ_ONLY),
    errno.EIO: ("ServiceUnavailable", IO_ERROR),
    errno.ENOENT: ("ServiceUnavailable", MISSING),
    errno.ENOTDIR: ("ServiceUnavailable", MISSING),
    errno.ESTALE: ("ServiceUnavailable", MISSING),
    errno.EACCES: ("ServiceUnavailable", DENIED),
    errno.EPERM: ("ServiceUnavailable", DENIED),
}

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_FAULTS: Final[dict[int, tuple[str, str]]] = {
    5: ("ServiceUnavailable", BUSY),  # SQLITE_BUSY
    6: ("ServiceUnavailable", BUSY),  # SQLITE_LOCKED
    8: ("ServiceUnavailable", READ_ONLY),  # SQLITE_READONLY
    10: ("ServiceUnavailable", IO_ERROR),  # SQLITE_IOERR
    11: ("ServiceUnavailable", DAMAGED),  # SQLITE_CORRUPT
    13: ("InsufficientStorage", FULL),  # SQLITE_FULL
    14: ("ServiceUnavailable", MISSING),  # SQLITE_CANTOPEN
    26: ("ServiceUnavailable", DAMAGED),  # SQLITE_NOTADB
}


def storage_fault(error: BaseException, root: Path | None = None) -> S3Error | None:
    """The S3 error a storage failure means, or None when ``error`` is not one.

    With the store's ``root``, an I/O error on a volume now mounted read-only (a file system
    that remounted itself read-only after an error: SQLite sees its writes fail with
    ``SQLITE_IOERR``) is reported as the read-only store it is.
    """
    found: tuple[str, str] | None = None
    if isinstance(error, OSError) and error.errno is not None:
        found = _OS_FAULTS.get(error.errno)
    elif isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int):
            found = _SQLITE_FAULTS.get(code & 0xFF)
    if found is None:
        return None
    code, message = found
    if message == IO_ERROR and root is not None and _read_only(root):
        message = READ_ONLY
    return S3Error(code, message)


def _read_only(root: Path) -> bool:
    """Whether ``root`` refuses writes as read-only. A file system that remounted itself
    after an error may not say so in ``statvfs`` (ext4's ``emergency_ro``), so try one."""
    try:
        if os.statvfs(root).f_flag & os.ST_RDONLY:
            return True
        probe = root / f".write-probe-{os.urandom(8).hex()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        os.unlink(probe)
    except OSError as error:
        return error.errno == errno.EROFS
    return False


def mapped(
    method: Callable[Concatenate[_S, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[_S, _P], Coroutine[Any, Any, _R]]:
    """Decorate a translator method: storage faults it raises become their S3 errors
    (logged with the request id of the :class:`RequestContext` argument, if any)."""

    @functools.wraps(method)
    async def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(self, *args, **kwargs)
        except (OSError, sqlite3.Error) as error:
            root = getattr(self, "root", None)
            fault = storage_fault(error, root if isinstance(root, Path) else None)
            if fault is None:
                raise
            ctx = next((a for a in args if isinstance(a, RequestContext)), None)
            log.error(
                "storage fault: %s",
                _describe(error),
                extra={
                    "request_id": ctx.request_id if ctx else None,
                    "backend_method": method.__name__,
                    "code": fault.code,
                },
            )
            raise fault from error

    return wrapper


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError):
        name = errno.errorcode.get(error.errno or 0, "?")
        return f"{name} ({error.strerror}) on {error.filename}"
    name = getattr(error, "sqlite_errorname", "SQLITE_ERROR")
    return f"{name} ({error}) in the catalogue"
