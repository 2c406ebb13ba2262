"""The artifact API: JSON over HTTP under ``/_pagewright/v1``, described by ``openapi.json``.

A Starlette application (:func:`gateway.api.app.create_api_app`) that the gateway hands every
request under :data:`API_PREFIX`. Its dependencies arrive in one :class:`ApiServices`.
"""

from __future__ import annotations

from gateway.api.app import API_PREFIX, create_api_app
from gateway.api.services import ApiKeyLookup, ApiServices

__all__ = ["API_PREFIX", "ApiKeyLookup", "ApiServices", "create_api_app"]
