"""Scraping a gateway's metrics in tests: the families, and one sample's value."""

from __future__ import annotations

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import GatewayEndpoint

METRICS = "/_pagewright/metrics"


def parse(text: str) -> dict[str, Metric]:
    """Family name -> family, as Prometheus reads the exposition (a counter's family is
    named without ``_total``)."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def scrape(server: GatewayEndpoint, url: str | None = None) -> dict[str, Metric]:
    """Scrape ``server`` (at ``url``, default its main listener) from loopback."""
    response = httpx.get(url or server.endpoint + METRICS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def value(families: dict[str, Metric], sample: str, **labels: str) -> float:
    """The value of the sample ``sample`` with exactly ``labels`` (0 when absent, as
    Prometheus reads a counter never incremented)."""
    for family in families.values():
        for found in family.samples:
            if found.name == sample and found.labels == labels:
                return float(found.value)
    return 0.0


def total(families: dict[str, Metric], sample: str, **labels: str) -> float:
    """The sum of the samples ``sample`` whose labels include ``labels``."""
    return sum(
        float(found.value)
        for family in families.values()
        for found in family.samples
        if found.name == sample and labels.items() <= found.labels.items()
    )
