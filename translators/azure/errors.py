"""The Azure translator's one map from azure.core exceptions to S3 errors, most specific first."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from core.errors import S3Error

log = logging.getLogger("pagewright.translators.azure")

_THROTTLED: Final = frozenset({"ServerBusy", "OperationTimedOut", "InternalError"})
_PRECONDITION: Final = frozenset({"ConditionNotMet", "BlobAlreadyExists", "TargetConditionNotMet"})


def error_code(error: BaseException) -> str:
    """Azure's x-ms-error-code of an SDK error, or ''."""
    code = getattr(error, "error_code", None) or ""
    return str(getattr(code, "value", code))


@contextmanager
def map_errors(*, bucket: str = "", key: str | None = None) -> Iterator[None]:
    """Turn an Azure SDK exception raised inside the block into an :class:`S3Error`.

    ``BlobNotFound`` is ``NoSuchKey`` (with ``key``), ``ContainerNotFound`` ``NoSuchBucket``
    (with ``bucket``); failed preconditions ``PreconditionFailed``; throttling ``SlowDown``;
    unreachable storage ``ServiceUnavailable``; anything else is logged with its cause and
    becomes ``InternalError``.
    """
    try:
        yield
    except S3Error:
        raise
    except AzureError as error:
        raise translate(error, bucket=bucket, key=key) from error


def translate(error: AzureError, *, bucket: str = "", key: str | None = None) -> S3Error:
    """The S3 error for one SDK exception (see :func:`map_errors`)."""
    code = error_code(error)
    status = getattr(error, "status_code", None)
    if isinstance(error, ResourceNotFoundError) or status == 404:
        if code == "ContainerNotFound":
            return S3Error("NoSuchBucket", BucketName=bucket)
        return S3Error("NoSuchKey", Key=key or "")
    if isinstance(error, ResourceModifiedError) or status == 412 or code in _PRECONDITION:
        return S3Error("PreconditionFailed", Condition="If-Match")
    if isinstance(error, ResourceExistsError):
        if code in ("ContainerAlreadyExists", "ContainerBeingDeleted"):
            return S3Error("BucketAlreadyOwnedByYou", BucketName=bucket)
        return S3Error("ConditionalRequestConflict")
    if isinstance(error, ClientAuthenticationError) or status == 403:
        log.error("Azure refused the gateway's credentials: %s", error)
        return S3Error("ServiceUnavailable", "The storage account refused the credentials.")
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        log.warning("Azure Blob Storage unreachable: %s", error)
        return S3Error("ServiceUnavailable", "Azure Blob Storage cannot be reached.")
    if isinstance(error, HttpResponseError) and (status == 503 or code in _THROTTLED):
        return S3Error("SlowDown")
    if code in ("InvalidBlockList", "InvalidBlobOrBlock", "BlockListTooLong"):
        return S3Error(
            "ConditionalRequestConflict",
            "Staged data was discarded by a concurrent write to this key; retry the request.",
        )
    if code in ("InvalidResourceName", "InvalidUri", "OutOfRangeInput") and key is not None:
        return S3Error("KeyTooLongError") if len(key) > 512 else S3Error("InvalidObjectName")
    log.error("unmapped Azure error (%s, status %s): %s", code or "no code", status, error)
    return S3Error("InternalError")
