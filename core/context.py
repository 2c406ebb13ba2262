"""The request context every Backend method receives first, so wrappers see who asks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    """Who asks, and the id of the request (for logs and error replies)."""

    request_id: str
    principal: str
