"""The gateway's Prometheus metrics, in-process over the memory store: a short session moves
the counters and histograms with the right labels; docs/metrics.md lists exactly the names
exported; the per-site gauges are capped; the readiness gauge follows the probe."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError, IncompleteReadError, ResponseStreamingError
from prometheus_client.metrics_core import Metric

from gateway.settings import Settings
from policy.model import SitePolicy
from tests.support.artifact_api import API, create_api_key, upload
from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway, in_process_gateway
from tests.support.metrics import METRICS, scrape, total, value
from tests.support.project import ROOT
from tests.support.raw_s3 import send
from translators.base import Backend
from translators.memory.backend import MemoryBackend
from translators.memory.store import Stored

SITE = "metrics-site"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessGateway, Any]]:
    """A gateway of its own (its own registry) after a short session; the scrape after it."""
    data_dir = tmp_path_factory.mktemp("metrics") / "data"
    with in_process_gateway(data_dir, Settings(log_level="warning")) as server:
        s3 = make_s3_client(server)
        s3.create_bucket(Bucket=SITE)
        s3.put_object(Bucket=SITE, Key="index.html", Body=b"<h1>hello</h1>")
        assert s3.get_object(Bucket=SITE, Key="index.html")["Body"].read() == b"<h1>hello</h1>"
        with pytest.raises(ClientError):
            s3.get_object(Bucket=SITE, Key="missing.html")
        assert send(server, "GET", f"/{SITE}/index.html", sign=False).status == 403
        upload(s3, SITE, "build-1")
        with pytest.raises(ClientError):  # not a gzip'd tar: refused by validation
            s3.put_object(Bucket=SITE, Key="builds/broken.tar.gz", Body=b"not an archive")
        key = create_api_key(server)
        auth = {"Authorization": f"Bearer {key}"}
        usage = httpx.get(f"{server.endpoint}{API}/sites/{SITE}/usage", headers=auth)
        assert usage.status_code == 200, usage.text
        missing = httpx.get(f"{server.endpoint}{API}/sites/{SITE}/artifacts/nope", headers=auth)
        assert missing.status_code == 404
        assert httpx.get(f"{server.endpoint}{API}/sites/{SITE}/usage").status_code == 401
        assert httpx.get(f"{server.endpoint}/_pagewright/readyz").status_code == 200
        yield server, scrape(server)


def families_of(session: tuple[InProcessGateway, Any]) -> dict[str, Metric]:
    families: dict[str, Metric] = session[1]
    return families


def test_s3_requests_are_counted_by_operation_and_status(
    session: tuple[InProcessGateway, Any],
) -> None:
    families = families_of(session)
    requests = "pagewright_requests_total"
    assert value(families, requests, surface="s3", operation="PutObject", status_class="2xx") == 2
    assert value(families, requests, surface="s3", operation="GetObject", status_class="2xx") == 1
    # the 404 and the anonymous read refused
    assert value(families, requests, surface="s3", operation="GetObject", status_class="4xx") == 2
    assert (
        value(families, requests, surface="s3", operation="CreateBucket", status_class="2xx") == 1
    )
    # the probes and the scrape are not requests of either surface
    assert value(families, requests, surface="s3", operation="unknown", status_class="2xx") == 0
    histogram = "pagewright_request_duration_seconds_count"
    assert value(families, histogram, surface="s3", operation="GetObject") == 3
    assert value(families, histogram, surface="s3", operation="PutObject") == 3


def test_bytes_and_errors_are_counted(session: tuple[InProcessGateway, Any]) -> None:
    families = families_of(session)
    received = value(
        families, "pagewright_received_bytes_total", surface="s3", operation="PutObject"
    )
    assert received >= len(b"<h1>hello</h1>") + len(b"not an archive")
    sent = value(families, "pagewright_sent_bytes_total", surface="s3", operation="GetObject")
    assert sent >= len(b"<h1>hello</h1>")
    assert value(families, "pagewright_errors_total", surface="s3", code="NoSuchKey") == 1
    assert value(families, "pagewright_errors_total", surface="s3", code="AccessDenied") == 1
    assert value(families, "pagewright_errors_total", surface="s3", code="InvalidArchive") == 1


def test_access_denials_and_validation_are_counted(session: tuple[InProcessGateway, Any]) -> None:
    families = families_of(session)
    denied = "pagewright_access_denied_total"
    assert value(families, denied, surface="s3", operation="GetObject") == 1
    rejections = "pagewright_validation_rejections_total"
    assert value(families, rejections, rule="InvalidArchive") == 1


def test_api_requests_are_counted_by_route_name(session: tuple[InProcessGateway, Any]) -> None:
    families = families_of(session)
    requests = "pagewright_requests_total"
    assert value(families, requests, surface="api", operation="GetUsage", status_class="2xx") == 1
    assert value(families, requests, surface="api", operation="GetUsage", status_class="4xx") == 1
    assert (
        value(families, requests, surface="api", operation="GetArtifact", status_class="4xx") == 1
    )
    assert value(families, "pagewright_errors_total", surface="api", code="NoSuchArtifact") == 1
    assert value(families, "pagewright_errors_total", surface="api", code="Unauthorized") == 1


def test_backend_calls_are_timed_by_call_and_outcome(
    session: tuple[InProcessGateway, Any],
) -> None:
    families = families_of(session)
    calls = "pagewright_backend_calls_total"
    assert value(families, calls, backend="memory", call="put_object", outcome="ok") >= 2
    assert value(families, calls, backend="memory", call="get_object", outcome="ok") >= 1
    assert value(families, calls, backend="memory", call="get_object", outcome="NoSuchKey") >= 1
    duration = "pagewright_backend_call_duration_seconds_count"
    assert value(families, duration, backend="memory", call="put_object") >= 2


def test_sites_build_and_readiness(session: tuple[InProcessGateway, Any]) -> None:
    families = families_of(session)
    stored = value(families, "pagewright_site_stored_bytes", site=SITE)
    assert stored > len(b"<h1>hello</h1>")
    assert value(families, "pagewright_site_artifacts", site=SITE) == 1
    assert "pagewright_site_quota_usage_ratio" in families  # no quota set: no sample
    assert not families["pagewright_site_quota_usage_ratio"].samples
    (info,) = families["pagewright_build_info"].samples
    assert info.value == 1
    assert set(info.labels) == {"version", "python"}
    assert value(families, "pagewright_ready") == 1


def test_jobs_and_the_volume(session: tuple[InProcessGateway, Any]) -> None:
    """Each job's configured interval; no free space on the memory backend (no volume)."""
    families = families_of(session)
    assert value(families, "pagewright_job_interval_seconds", job_name="retention") == 3600
    assert value(families, "pagewright_job_interval_seconds", job_name="scrub") == 86400
    assert not families["pagewright_free_bytes"].samples
    assert not families["pagewright_min_free_bytes"].samples


def documented_names() -> set[str]:
    """The metric names of docs/metrics.md's table (first column, in backticks)."""
    text = (ROOT / "docs" / "metrics.md").read_text()
    return set(re.findall(r"^\| `(pagewright_[a-z_]+)`", text, re.MULTILINE))


def exported_names(families: dict[str, Metric]) -> set[str]:
    """The exported pagewright_ names, as written in queries (counters with ``_total``)."""
    return {
        name + "_total" if family.type == "counter" else name
        for name, family in families.items()
        if name.startswith("pagewright_")
    }


def test_docs_list_exactly_the_exported_names(session: tuple[InProcessGateway, Any]) -> None:
    families = families_of(session)
    assert documented_names() == exported_names(families)
    # the standard process collectors are documented as a group
    assert "process_resident_memory_bytes" in families
    assert "process_" in (ROOT / "docs" / "metrics.md").read_text()


def test_readme_names_the_corrupt_artifact_counter(session: tuple[InProcessGateway, Any]) -> None:
    readme = (ROOT / "README.md").read_text()
    assert "pagewright_artifact_corrupt_total" in readme
    assert "pagewright_artifact_corrupt_total" in exported_names(families_of(session))


def translator_of(server: InProcessGateway) -> Backend:
    backend: Any = server.app.backend
    while hasattr(backend, "inner"):
        backend = backend.inner
    assert isinstance(backend, MemoryBackend)
    return backend


def test_a_corrupt_download_is_counted(tmp_path: Path) -> None:
    with in_process_gateway(tmp_path / "data") as server:
        s3 = make_s3_client(server)
        s3.create_bucket(Bucket="rotting")
        upload(s3, "rotting", "b1", padding=1000)
        memory = translator_of(server)
        assert isinstance(memory, MemoryBackend)
        with memory.store.bucket("rotting") as bucket:
            stored = bucket.objects["builds/b1.tar.gz"]
            damaged = bytearray(stored.data)
            damaged[len(damaged) // 2] ^= 0xFF
            bucket.objects["builds/b1.tar.gz"] = Stored(stored.info, bytes(damaged))
        with pytest.raises((IncompleteReadError, ResponseStreamingError)):  # aborted
            s3.get_object(Bucket="rotting", Key="builds/b1.tar.gz")["Body"].read()
        families = scrape(server)
    assert value(families, "pagewright_artifact_corrupt_total") == 1
    assert value(families, "pagewright_errors_total", surface="s3", code="InternalError") == 1


def test_sites_beyond_the_cap_are_summed_under_other(tmp_path: Path) -> None:
    with in_process_gateway(tmp_path / "data", Settings(metrics_max_sites=2)) as server:
        s3 = make_s3_client(server)
        for name, size in (("site-a", 400), ("site-b", 300), ("site-c", 200), ("site-d", 100)):
            s3.create_bucket(Bucket=name)
            s3.put_object(Bucket=name, Key="page.html", Body=b"x" * size)
        families = scrape(server)
    stored = {s.labels["site"]: s.value for s in families["pagewright_site_stored_bytes"].samples}
    assert stored == {"site-a": 400, "site-b": 300, "_other": 300}
    assert total(families, "pagewright_site_artifacts") == 0


def test_quota_usage_ratio(tmp_path: Path) -> None:
    settings = Settings(log_level="warning")
    with in_process_gateway(tmp_path / "data", settings) as server:
        s3 = make_s3_client(server)
        s3.create_bucket(Bucket="quota-site")
        key = create_api_key(server)
        policy = httpx.put(
            f"{server.endpoint}{API}/sites/quota-site/policy",
            headers={"Authorization": f"Bearer {key}"},
            json={"overrides": {"quota_bytes": 1000}},
        )
        assert policy.status_code == 200, policy.text
        s3.put_object(Bucket="quota-site", Key="page.html", Body=b"x" * 250)
        families = scrape(server)
    assert value(families, "pagewright_site_quota_usage_ratio", site="quota-site") == 0.25


def test_rate_limited_requests_are_counted(tmp_path: Path) -> None:
    settings = Settings(principal_requests_per_second=0.001, principal_request_burst=1)
    with in_process_gateway(tmp_path / "data", settings) as server:
        assert send(server, "GET", "/").status == 200
        assert send(server, "GET", "/").status == 503
        families = scrape(server)
    limited = "pagewright_rate_limited_total"
    assert value(families, limited, surface="s3", limit="principal requests") == 1
    assert value(families, "pagewright_errors_total", surface="s3", code="SlowDown") == 1


def test_the_metrics_path_takes_get_only(session: tuple[InProcessGateway, Any]) -> None:
    server, _ = session
    response = httpx.post(server.endpoint + METRICS)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_retention_deletions_are_counted(tmp_path: Path) -> None:
    settings = Settings(log_level="warning", policy=SitePolicy(retention_keep_last=1))
    with in_process_gateway(tmp_path / "data", settings) as server:
        s3 = make_s3_client(server)
        s3.create_bucket(Bucket="kept-site")
        upload(s3, "kept-site", "first")
        upload(s3, "kept-site", "second")  # retention after it deletes the first
        families = scrape(server)
    assert value(families, "pagewright_retention_deletions_total") == 1
    assert value(families, "pagewright_site_artifacts", site="kept-site") == 1
