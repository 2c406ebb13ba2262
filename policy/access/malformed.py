"""The one way the access package refuses a policy: ``S3Error("MalformedPolicy", ...)``."""

from __future__ import annotations

from core.errors import S3Error


def malformed(message: str) -> S3Error:
    """A MalformedPolicy error whose message says precisely what is wrong, and where."""
    return S3Error("MalformedPolicy", message)
