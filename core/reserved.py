"""The key prefixes the gateway keeps for itself in every bucket.

Hidden from S3 listings and refused to S3 clients (``InvalidObjectName``): the staging area
of multipart artifacts (``policy.validation``) and the per-site state record with the
gateway's other bookkeeping objects (``policy.site_state``). Translators never version them
(``translators.versioning``): bookkeeping is rewritten in place, never kept as history.
"""

from __future__ import annotations

STAGING_PREFIX = ".pagewright-staging/"
SITE_STATE_PREFIX = ".pagewright-site/"
RESERVED_PREFIXES = (STAGING_PREFIX, SITE_STATE_PREFIX)


def is_reserved_key(key: str) -> bool:
    """Whether ``key`` lies in an area the gateway reserves (:data:`RESERVED_PREFIXES`)."""
    return key.startswith(RESERVED_PREFIXES)
