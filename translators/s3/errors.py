"""botocore exceptions -> S3 errors for the S3 translator, in one place.

:func:`map_errors` is the only way an SDK failure leaves :mod:`translators.s3`. The backend's
own S3 error codes pass through when the gateway's table knows them (the two speak the same
protocol); throttling becomes ``SlowDown``; an unreachable endpoint ``ServiceUnavailable``
naming it; anything else is logged with its cause and becomes ``InternalError``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from core.errors import ERRORS, S3Error

log = logging.getLogger("pagewright.translators.s3")

#: Backend codes that mean "too many requests": all become the gateway's SlowDown.
THROTTLING: Final = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "EC2ThrottledException",
    }
)
#: Backend codes that must not reach a client as-is: they describe the gateway's own
#: credentials or requests to the backend, not the client's request.
_GATEWAY_FAULTS: Final = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
        "RequestTimeTooSkewed",
        "XAmzContentSHA256Mismatch",
        "InvalidDigest",
        "BadDigest",
        "MissingContentLength",
        "MalformedXML",
        "InvalidRequest",
        "InvalidArgument",
        "NotImplemented",
        "MethodNotAllowed",
    }
)
_HTTP_STATUS_CODES: Final = {"404": "NoSuchKey", "412": "PreconditionFailed", "416": "InvalidRange"}


def error_code(error: BaseException) -> str:
    """The S3 code of a botocore ``ClientError`` ("" for anything else)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def error_field(error: ClientError, name: str) -> str | None:
    value: Any = error.response.get("Error", {}).get(name)
    return None if value is None else str(value)


@contextmanager
def map_errors(endpoint: str, operation: str, **fields: str) -> Iterator[None]:
    """Translate botocore failures inside the block into :class:`S3Error`.

    ``fields`` (``BucketName=``, ``Key=``, ``UploadId=``) are attached to the not-found
    errors so replies name the gateway's bucket and key, never the backend's location.
    """
    try:
        yield
    except S3Error:
        raise
    except ClientError as error:
        raise _from_client_error(error, endpoint, operation, fields) from error
    except (EndpointConnectionError, ConnectTimeoutError) as error:
        raise S3Error(
            "ServiceUnavailable", f"The storage backend at {endpoint} cannot be reached."
        ) from error
    except (ReadTimeoutError, ConnectionClosedError) as error:
        raise S3Error(
            "ServiceUnavailable", f"The storage backend at {endpoint} stopped answering."
        ) from error
    except (NoCredentialsError, PartialCredentialsError) as error:
        log.error("S3 backend %s: %s failed: no usable credentials: %s", endpoint, operation, error)
        raise S3Error("InternalError", "The gateway has no credentials for its backend.") from error
    except BotoCoreError as error:
        log.error("S3 backend %s: %s failed: %r", endpoint, operation, error)
        raise S3Error("InternalError") from error


def _from_client_error(
    error: ClientError, endpoint: str, operation: str, fields: dict[str, str]
) -> S3Error:
    code = error_code(error)
    code = _HTTP_STATUS_CODES.get(code, code)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in THROTTLING or (status == 503 and code not in ERRORS):
        return S3Error("SlowDown", f"The storage backend at {endpoint} is throttling requests.")
    if code == "NoSuchBucket":
        return S3Error(code, **_only(fields, "BucketName"))
    if code == "NoSuchKey":
        return S3Error(code, **_only(fields, "Key"))
    if code == "NoSuchUpload":
        return S3Error(code, **_only(fields, "UploadId"))
    if code == "PreconditionFailed":
        condition = error_field(error, "Condition")
        extra: dict[str, Any] = {"Condition": condition} if condition else {}
        return S3Error(code, **extra)
    if code in ("ServiceUnavailable", "InternalError") and status is not None and status >= 500:
        return S3Error(
            "ServiceUnavailable", f"The storage backend at {endpoint} is unavailable ({code})."
        )
    if code in ERRORS and code not in _GATEWAY_FAULTS:
        return S3Error(code)
    log.error(
        "S3 backend %s: %s failed: %s (HTTP %s): %s",
        endpoint,
        operation,
        code,
        status,
        error_field(error, "Message"),
    )
    return S3Error("InternalError")


def _only(fields: dict[str, str], name: str) -> dict[str, Any]:
    return {name: fields[name]} if name in fields else {}
