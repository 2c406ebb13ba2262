"""The request context every Backend method receives first, so wrappers see who asks."""

from __future__ import annotations

from dataclasses import dataclass

from core.sse import CustomerKey


@dataclass(frozen=True)
class RequestContext:
    """Who asks, and the id of the request (for logs and error replies).

    ``customer_key``: the SSE-C key the request carries, for the writes that need the key
    of an existing upload (UploadPart); reads take theirs in ``GetOptions``.
    ``bypass_governance``: the request asked to bypass GOVERNANCE retention and its
    principal is allowed to (``policy.object_lock``).
    """

    request_id: str
    principal: str
    customer_key: CustomerKey | None = None
    bypass_governance: bool = False
