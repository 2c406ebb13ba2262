"""The metrics and reports of artifact validation: rejected uploads and corrupt artifacts."""

from __future__ import annotations

import logging

from prometheus_client import Counter

from policy.model import Catalog

log = logging.getLogger(__name__)

ARTIFACT_CORRUPT = Counter(
    "pagewright_artifact_corrupt_total",
    "Artifacts whose bytes no longer match their stored SHA256, found by a read or verify.",
    ["site"],
)
ARTIFACT_REJECTED = Counter(
    "pagewright_artifact_rejected_total",
    "Artifact uploads rejected by archive validation, by the S3 error code of the rule.",
    ["site", "code"],
)


async def report_corrupt(
    catalog: Catalog | None, site: str, key: str, expected: str, actual: str
) -> None:
    """Log, count (``pagewright_artifact_corrupt_total``) and, with a catalog, mark corrupt an
    artifact whose bytes hash to ``actual`` instead of ``expected`` (hex). Catalog failures
    are logged, never raised: the caller is already reporting a worse problem."""
    log.error(
        "artifact corrupt: stored bytes do not match their SHA256",
        extra={"site": site, "key": key, "expected_sha256": expected, "actual_sha256": actual},
    )
    ARTIFACT_CORRUPT.labels(site=site).inc()
    if catalog is None:
        return
    try:
        await catalog.update(site, key, corrupt=True)
    except KeyError:
        log.warning("corrupt artifact has no catalog record", extra={"site": site, "key": key})
    except Exception:
        log.exception(
            "could not mark the artifact corrupt in the catalog", extra={"site": site, "key": key}
        )
