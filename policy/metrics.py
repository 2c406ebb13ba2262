"""The gateway's Prometheus metrics: one registry per gateway and the metric objects on it.

A :class:`Metrics` is made once (``policy.stack.build_stack``) and handed to whoever counts:
the gateway's access line (requests, bytes, errors), the access decision, the rate limits,
the validation wrapper, the scrub, retention, the periodic jobs and
:class:`policy.metrics_backend.MeasuredBackend`. Nothing is registered in prometheus_client's
global ``REGISTRY``, so several gateways (and tests) in one process never share a counter.
Every name is listed, with its type, labels and meaning, in ``docs/metrics.md``.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Final, Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.process_collector import ProcessCollector

from core.errors import S3Error
from core.retries import counting

# Every counter and histogram would otherwise get a ``*_created`` series beside it, doubling
# the series stored; no dashboard or alert uses them. A process-wide switch of the library.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: Request and backend-call durations: from a cached HEAD to a large artifact upload.
DURATION_BUCKETS: Final = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    *(1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
#: A background pass: seconds (retention over a few sites) to hours (a scrub at 8 MiB/s).
JOB_BUCKETS: Final = (1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 12 * 3600.0)

#: What an unrouted request's (or an unknown action's) operation label is.
UNKNOWN: Final = "unknown"


#: Label-value combinations a :class:`Children` keeps (the hot paths' labels come from small
#: fixed sets: surfaces, operations, status classes, error codes, translator calls).
_MAX_CHILDREN: Final = 4096
M = TypeVar("M", bound=MetricWrapperBase)


class Children(Generic[M]):
    """The labelled children of one metric, each looked up once: ``metric.labels(...)``
    validates and joins its values on every call, which the per-request counters would pay
    several times a request. The child is the one ``labels`` returns (never removed here)."""

    def __init__(self, metric: M) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self.metric.labels(*values)
            if len(self._children) < _MAX_CHILDREN:
                self._children[values] = child
        return child


def status_class(status: int) -> str:
    """``2xx`` for 200..299 and so on."""
    return f"{status // 100}xx"


def _version() -> str:
    try:
        return metadata.version("pagewright-gateway")
    except metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """Every metric of one gateway, on its own :class:`CollectorRegistry`.

    ``process``: also export the standard ``process_*`` and ``python_gc_*`` collectors
    (memory, CPU, open files, garbage collections) of this process.
    """

    def __init__(self, *, process: bool = True) -> None:
        registry = CollectorRegistry()
        self.registry = registry
        if process:
            ProcessCollector(registry=registry)
            GCCollector(registry=registry)
        surface_operation = ["surface", "operation"]
        self.requests = Counter(
            "pagewright_requests_total",
            "Requests answered, by surface (s3, api), operation and status class.",
            [*surface_operation, "status_class"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "pagewright_request_duration_seconds",
            "Time from a request's arrival to the end of its reply.",
            surface_operation,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.received_bytes = Counter(
            "pagewright_received_bytes_total",
            "Request body bytes received, as they came off the wire.",
            surface_operation,
            registry=registry,
        )
        self.sent_bytes = Counter(
            "pagewright_sent_bytes_total",
            "Response body bytes sent.",
            surface_operation,
            registry=registry,
        )
        self.errors = Counter(
            "pagewright_errors_total",
            "Requests answered with an error (4xx/5xx) or aborted midway, by error code.",
            ["surface", "code"],
            registry=registry,
        )
        self.backend_calls = Counter(
            "pagewright_backend_calls_total",
            "Calls of the storage translator, by method and outcome (ok or the S3 error code).",
            ["backend", "call", "outcome"],
            registry=registry,
        )
        self.backend_call_duration = Histogram(
            "pagewright_backend_call_duration_seconds",
            "Duration of a translator call (a streamed GET: until the body is opened).",
            ["backend", "call"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.backend_retries = Counter(
            "pagewright_backend_retries_total",
            "Retries the translator made within its calls (its SDK's or its own), by method.",
            ["backend", "call"],
            registry=registry,
        )
        self.access_denied = Counter(
            "pagewright_access_denied_total",
            "Requests refused AccessDenied by an access decision.",
            surface_operation,
            registry=registry,
        )
        self.rate_limited = Counter(
            "pagewright_rate_limited_total",
            "Requests refused SlowDown by a rate limit, by the limit that refused them.",
            ["surface", "limit"],
            registry=registry,
        )
        self.validation_rejections = Counter(
            "pagewright_validation_rejections_total",
            "Artifact uploads refused by validation, by the rule's S3 error code.",
            ["rule"],
            registry=registry,
        )
        self.artifact_corrupt = Counter(
            "pagewright_artifact_corrupt_total",
            "Artifacts found corrupt (bytes not matching their SHA256) by a download or scrub.",
            registry=registry,
        )
        self.retention_deletions = Counter(
            "pagewright_retention_deletions_total",
            "Artifacts deleted by retention.",
            registry=registry,
        )
        # job_name, not job: Prometheus gives every scraped series its target's ``job`` label.
        self.job_runs = Counter(
            "pagewright_job_runs_total",
            "Runs of a background job in this process, by outcome (ok, error).",
            ["job_name", "outcome"],
            registry=registry,
        )
        self.job_last_run = Gauge(
            "pagewright_job_last_run_timestamp_seconds",
            "When the job's last run ended (Unix time), whatever its outcome, on any replica.",
            ["job_name"],
            registry=registry,
        )
        self.job_duration = Histogram(
            "pagewright_job_duration_seconds",
            "Duration of a background job's run.",
            ["job_name"],
            buckets=JOB_BUCKETS,
            registry=registry,
        )
        self.job_interval = Gauge(
            "pagewright_job_interval_seconds",
            "How often the background job is configured to run (0: off).",
            ["job_name"],
            registry=registry,
        )
        self.build_info = Gauge(
            "pagewright_build_info",
            "Always 1; the labels name the gateway's version and Python's.",
            ["version", "python"],
            registry=registry,
        )
        self.build_info.labels(version=_version(), python=platform.python_version()).set(1)
        self.ready = Gauge(
            "pagewright_ready",
            "1 when the last readiness check passed, else 0.",
            registry=registry,
        )
        self.circuit_breaker_state = Gauge(
            "pagewright_circuit_breaker_state",
            "The remote backend's circuit breaker: 0 closed, 1 half-open, 2 open.",
            ["backend"],
            registry=registry,
        )
        self._before_scrape: list[Callable[[], Awaitable[None]]] = []
        # The children counted on every request and every translator call.
        self._requests = Children(self.requests)
        self._request_duration = Children(self.request_duration)
        self._received_bytes = Children(self.received_bytes)
        self._sent_bytes = Children(self.sent_bytes)
        self._backend_calls = Children(self.backend_calls)
        self._backend_call_duration = Children(self.backend_call_duration)

    def before_scrape(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Have :meth:`scrape` await ``refresh`` first (values read at scrape time, such as
        the per-site gauges of :mod:`policy.metrics_sites`)."""
        self._before_scrape.append(refresh)

    async def scrape(self) -> bytes:
        """Refresh what is read at scrape time, then every metric in Prometheus' text
        exposition format."""
        for refresh in self._before_scrape:
            await refresh()
        return generate_latest(self.registry)

    def observe_request(
        self,
        *,
        surface: str,
        operation: str | None,
        status: int,
        received: int,
        sent: int,
        seconds: float,
        error_code: str | None,
    ) -> None:
        """Count one request (called once per request, with its access line)."""
        operation = operation or UNKNOWN
        self._requests(surface, operation, status_class(status)).inc()
        self._request_duration(surface, operation).observe(seconds)
        self._received_bytes(surface, operation).inc(received)
        self._sent_bytes(surface, operation).inc(sent)
        if error_code is not None:
            self.errors.labels(surface, error_code).inc()

    def schedule_job(self, name: str, interval_s: float) -> None:
        """Export job ``name``'s configured interval (0: off)."""
        self.job_interval.labels(name).set(interval_s)

    def job(self, name: str) -> Callable[[bool, float], None]:
        """The recorder of job ``name``'s runs: ``record(succeeded, seconds)``."""

        def record(succeeded: bool, seconds: float) -> None:
            self.job_runs.labels(name, "ok" if succeeded else "error").inc()
            self.job_duration.labels(name).observe(seconds)
            self.job_last_run.labels(name).set(time.time())

        return record

    @contextmanager
    def timed(self, backend: str, call: str) -> Iterator[None]:
        """Time a translator call and count its outcome: ``ok``, the S3 error code it raised,
        ``error`` (another exception) or ``cancelled`` (the request went away meanwhile); and
        the retries the translator reported within it (:mod:`core.retries`)."""
        started = time.perf_counter()
        outcome = "ok"
        with counting() as retries:
            try:
                yield
            except S3Error as error:
                outcome = error.code
                raise
            except Exception:
                outcome = "error"
                raise
            except BaseException:
                outcome = "cancelled"
                raise
            finally:
                elapsed = time.perf_counter() - started
                self._backend_call_duration(backend, call).observe(elapsed)
                self._backend_calls(backend, call, outcome).inc()
                if retries.value:
                    self.backend_retries.labels(backend, call).inc(retries.value)
