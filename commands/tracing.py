"""OpenTelemetry tracing for ``serve``, configured by the standard ``OTEL_*`` variables.

Off by default. :func:`tracing_config` reads the variables once (from the environment
``serve`` passes) into a :class:`TracingConfig`, or None when tracing is off; then
:func:`start_tracing` builds the SDK's tracer provider with a batch span processor and
the OTLP/HTTP (protobuf) exporter and hands the gateway a :class:`gateway.tracing.Tracing`:
a tracer and the shutdown that exports what is queued. Nothing here sets OpenTelemetry's
global tracer provider; the gateway's spans come from the tracer it is given.

On when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, or ``console`` for debugging;
a list is allowed) or, when it is unset, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set. Off when ``OTEL_SDK_DISABLED=true`` (which
wins) or ``OTEL_TRACES_EXPORTER=none``. Also read, as the specification defines them:
``OTEL_SERVICE_NAME`` (default ``pagewright-gateway``), ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER``/``_ARG`` (default ``parentbased_always_on``), the exporter's
``OTEL_EXPORTER_OTLP[_TRACES]_{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION,PROTOCOL,CERTIFICATE,
CLIENT_KEY,CLIENT_CERTIFICATE}`` (the ``_TRACES_`` one wins; the protocol must be
``http/protobuf``; a base endpoint gets ``/v1/traces`` appended; timeouts in milliseconds)
and the batch processor's ``OTEL_BSP_{SCHEDULE_DELAY,EXPORT_TIMEOUT,MAX_QUEUE_SIZE,
MAX_EXPORT_BATCH_SIZE}``. A malformed value is a :class:`gateway.settings.SettingsError`
naming the variable.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from gateway.settings import SettingsError
from gateway.tracing import Tracing

log = logging.getLogger("pagewright.tracing")

SERVICE_NAME: Final = "pagewright-gateway"
DEFAULT_ENDPOINT: Final = "http://localhost:4318/v1/traces"
EXPORTERS: Final = ("otlp", "console")
SAMPLERS: Final = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


@dataclass(frozen=True)
class TracingConfig:
    """Tracing as the ``OTEL_*`` variables configure it (module docstring)."""

    exporters: tuple[str, ...] = ("otlp",)
    service_name: str = SERVICE_NAME
    resource_attributes: tuple[tuple[str, str], ...] = ()
    sampler: str = "parentbased_always_on"
    sampler_ratio: float = 1.0
    endpoint: str = DEFAULT_ENDPOINT
    # Exporter headers often carry an API key: never in repr.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    timeout_ms: int = 10_000
    compression: str = "none"
    certificate_file: str | None = None
    client_key_file: str | None = None
    client_certificate_file: str | None = None
    schedule_delay_ms: int = 5_000
    export_timeout_ms: int = 30_000
    max_queue_size: int = 2_048
    max_export_batch_size: int = 512


def tracing_config(environ: Mapping[str, str]) -> TracingConfig | None:
    """The tracing configuration ``environ`` holds; None when tracing is off."""

    def get(name: str) -> str:
        return environ.get(name, "").strip()

    def otlp(setting: str) -> str:
        """The ``_TRACES_`` variable of an exporter setting, else the general one."""
        return get(f"OTEL_EXPORTER_OTLP_TRACES_{setting}") or get(f"OTEL_EXPORTER_OTLP_{setting}")

    def otlp_name(setting: str) -> str:
        """The name of the variable :func:`otlp` took ``setting`` from (for errors)."""
        traces = f"OTEL_EXPORTER_OTLP_TRACES_{setting}"
        return traces if get(traces) else f"OTEL_EXPORTER_OTLP_{setting}"

    if get("OTEL_SDK_DISABLED").lower() == "true":
        return None
    named = get("OTEL_TRACES_EXPORTER")
    if named:
        exporters = tuple(dict.fromkeys(e.strip().lower() for e in named.split(",") if e.strip()))
        unknown = [e for e in exporters if e not in (*EXPORTERS, "none")]
        if unknown:
            raise SettingsError(
                f"OTEL_TRACES_EXPORTER: unsupported exporter(s) {', '.join(unknown)}; "
                f"use {', '.join(EXPORTERS)} or none"
            )
        exporters = tuple(e for e in exporters if e != "none")
    else:
        exporters = ("otlp",) if otlp("ENDPOINT") else ()
    if not exporters:
        return None
    protocol = otlp("PROTOCOL") or "http/protobuf"
    if protocol != "http/protobuf":
        raise SettingsError(
            f"{otlp_name('PROTOCOL')}: {protocol!r} is not supported; use http/protobuf"
        )
    sampler = get("OTEL_TRACES_SAMPLER").lower() or "parentbased_always_on"
    if sampler not in SAMPLERS:
        raise SettingsError(f"OTEL_TRACES_SAMPLER: unsupported {sampler!r}; use one of {SAMPLERS}")
    ratio = _number("OTEL_TRACES_SAMPLER_ARG", get("OTEL_TRACES_SAMPLER_ARG"), 1.0)
    if "traceidratio" in sampler and not 0.0 <= ratio <= 1.0:
        raise SettingsError("OTEL_TRACES_SAMPLER_ARG: a ratio between 0 and 1")
    compression = otlp("COMPRESSION").lower() or "none"
    if compression not in ("gzip", "none"):
        raise SettingsError(f"{otlp_name('COMPRESSION')}: gzip or none")
    traces_endpoint = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base_endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT")
    endpoint = traces_endpoint or (
        base_endpoint.rstrip("/") + "/v1/traces" if base_endpoint else DEFAULT_ENDPOINT
    )
    resource = _pairs("OTEL_RESOURCE_ATTRIBUTES", get("OTEL_RESOURCE_ATTRIBUTES"))
    service_name = get("OTEL_SERVICE_NAME") or dict(resource).get("service.name") or SERVICE_NAME
    config = TracingConfig(
        exporters=exporters,
        service_name=service_name,
        resource_attributes=resource,
        sampler=sampler,
        sampler_ratio=ratio,
        endpoint=endpoint,
        headers=_pairs(otlp_name("HEADERS"), otlp("HEADERS")),
        timeout_ms=_whole(otlp_name("TIMEOUT"), otlp("TIMEOUT"), 10_000),
        compression=compression,
        certificate_file=otlp("CERTIFICATE") or None,
        client_key_file=otlp("CLIENT_KEY") or None,
        client_certificate_file=otlp("CLIENT_CERTIFICATE") or None,
        schedule_delay_ms=_whole("OTEL_BSP_SCHEDULE_DELAY", get("OTEL_BSP_SCHEDULE_DELAY"), 5000),
        export_timeout_ms=_whole("OTEL_BSP_EXPORT_TIMEOUT", get("OTEL_BSP_EXPORT_TIMEOUT"), 30000),
        max_queue_size=_whole("OTEL_BSP_MAX_QUEUE_SIZE", get("OTEL_BSP_MAX_QUEUE_SIZE"), 2048),
        max_export_batch_size=_whole(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), 512
        ),
    )
    if not 0 < config.max_export_batch_size <= config.max_queue_size:
        raise SettingsError(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: at least 1 and at most OTEL_BSP_MAX_QUEUE_SIZE"
        )
    return config


def start_tracing(config: TracingConfig) -> Tracing:
    """The SDK's tracer provider as ``config`` says, exporting in a background thread."""
    try:
        version = importlib.metadata.version("pagewright-gateway")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    resource = Resource(
        {
            **dict(config.resource_attributes),
            "service.name": config.service_name,
            "service.version": version,
        }
    )
    provider = TracerProvider(sampler=_sampler(config), resource=resource, shutdown_on_exit=False)
    for exporter in config.exporters:
        provider.add_span_processor(
            BatchSpanProcessor(
                _exporter(config, exporter),
                max_queue_size=config.max_queue_size,
                schedule_delay_millis=config.schedule_delay_ms,
                max_export_batch_size=config.max_export_batch_size,
                export_timeout_millis=config.export_timeout_ms,
            )
        )

    def shutdown() -> None:
        try:
            provider.shutdown()
        except Exception:
            log.exception("tracing: the span export could not be shut down")

    return Tracing(provider.get_tracer("pagewright-gateway", version), shutdown)


def _exporter(config: TracingConfig, name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    return OTLPSpanExporter(
        endpoint=config.endpoint,
        certificate_file=config.certificate_file,
        client_key_file=config.client_key_file,
        client_certificate_file=config.client_certificate_file,
        headers=dict(config.headers),
        timeout=config.timeout_ms / 1000,
        compression=Compression.Gzip if config.compression == "gzip" else Compression.NoCompression,
    )


def _sampler(config: TracingConfig) -> Sampler:
    root: Sampler
    name = config.sampler.removeprefix("parentbased_")
    if name == "always_on":
        root = ALWAYS_ON
    elif name == "always_off":
        root = ALWAYS_OFF
    else:
        root = TraceIdRatioBased(config.sampler_ratio)
    return ParentBased(root) if config.sampler.startswith("parentbased_") else root


def _pairs(variable: str, value: str) -> tuple[tuple[str, str], ...]:
    """``key=value,key=value`` (values percent-encoded), as W3C Baggage spells them."""
    pairs: list[tuple[str, str]] = []
    for item in value.split(","):
        if not item.strip():
            continue
        key, equals, text = item.partition("=")
        if not equals or not key.strip():
            raise SettingsError(f"{variable}: {item.strip()!r} is not key=value")
        pairs.append((unquote(key.strip()), unquote(text.strip())))
    return tuple(pairs)


def _whole(variable: str, value: str, default: int) -> int:
    if not value:
        return default
    if not value.isdigit():
        raise SettingsError(f"{variable}: {value!r} is not a whole number")
    return int(value)


def _number(variable: str, value: str, default: float) -> float:
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise SettingsError(f"{variable}: {value!r} is not a number") from None
