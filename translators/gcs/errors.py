"""The GCS translator's one map from SDK and transport exceptions to S3 errors, most
specific first, and which of them a retry may cure."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Final

import google.auth.exceptions
import requests
import urllib3.exceptions
from google.api_core import exceptions as api

from core.errors import S3Error

log = logging.getLogger(__name__)


_TRANSPORT: Final = (
    requests.ConnectionError,
    requests.Timeout,
    urllib3.exceptions.HTTPError,
    google.auth.exceptions.TransportError,
    ConnectionError,
    TimeoutError,
)
_TRANSIENT: Final = (
    api.TooManyRequests,
    api.InternalServerError,
    api.BadGateway,
    api.ServiceUnavailable,
    api.GatewayTimeout,
    *_TRANSPORT,
)


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same idempotent call may succeed."""
    return isinstance(error, _TRANSIENT)


@contextlib.contextmanager
def map_errors(
    endpoint: str,
    *,
    missing: Callable[[], S3Error] | None = None,
    condition: str = "If-Match",
) -> Iterator[None]:
    """Turn SDK and transport exceptions into S3 errors, most specific first.

    ``missing`` builds the error for a 404 (NoSuchKey, NoSuchBucket, NoSuchUpload as fits
    the call); without it a 404 is unexpected and becomes InternalError. ``condition`` names
    the precondition a 412 reports.
    """
    try:
        yield
    except S3Error:
        raise
    except api.NotFound as error:
        if missing is None:
            log.error("unexpected 404 from Google Cloud Storage: %s", error)
            raise S3Error("InternalError", "The storage backend lost an object.") from error
        raise missing() from error
    except api.PreconditionFailed as error:
        raise S3Error("PreconditionFailed", Condition=condition) from error
    except (api.TooManyRequests, api.ServiceUnavailable) as error:
        raise S3Error("SlowDown", "Google Cloud Storage asked to reduce the request rate.") from (
            error
        )
    except _TRANSPORT as error:
        raise S3Error(
            "ServiceUnavailable",
            f"Google Cloud Storage at {endpoint} cannot be reached: {error}",
        ) from error
    except Exception as error:
        log.error(
            "Google Cloud Storage call failed: %s: %s", type(error).__name__, error, exc_info=error
        )
        raise S3Error("InternalError") from error
