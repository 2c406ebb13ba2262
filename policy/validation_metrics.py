"""The report of a corrupt artifact: logged, counted, marked in the catalog."""

from __future__ import annotations

import logging

from policy.metrics import Metrics
from policy.model import Catalog

log = logging.getLogger(__name__)


async def report_corrupt(
    catalog: Catalog | None,
    site: str,
    key: str,
    expected: str,
    actual: str,
    metrics: Metrics | None = None,
) -> None:
    """Log, count (``pagewright_artifact_corrupt_total``, with ``metrics``) and, with a
    catalog, mark corrupt an artifact whose bytes hash to ``actual`` instead of ``expected``
    (hex). Catalog failures are logged, never raised: the caller is already reporting a
    worse problem."""
    log.error(
        "artifact corrupt: stored bytes do not match their SHA256",
        extra={"site": site, "key": key, "expected_sha256": expected, "actual_sha256": actual},
    )
    if metrics is not None:
        metrics.artifact_corrupt.inc()
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
