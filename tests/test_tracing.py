"""OpenTelemetry tracing: configured by the standard ``OTEL_*`` variables and off by default;
spans exported over OTLP/HTTP to a real receiver (tests.support.otlp) and checked as a tree:
the server span named by the Operation, a child of the caller's ``traceparent``, with
``authenticate``, ``authorize``, the policy steps, ``backend.<method>`` and, over the S3
translator, the botocore calls below it; the same trace id in the access line."""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from commands.tracing import DEFAULT_ENDPOINT, TracingConfig, tracing_config
from core.tracing import span, tracing_with
from gateway.settings import SettingsError
from gateway.tracing import ServerSpans
from policy.backend_spans import BackendSpans
from policy.validation import ValidationBackend
from tests.support.archives import gzip, make_tar, site
from tests.support.artifact_api import API, create_api_key
from tests.support.clients import make_s3_client
from tests.support.emulators import running, start_moto
from tests.support.gateway import in_process_gateway
from tests.support.otlp import (
    CLIENT,
    INTERNAL,
    SERVER,
    STATUS_ERROR,
    OtlpReceiver,
    ReceivedSpan,
    otlp_receiver,
)
from tests.support.servers import free_port, running_gateway
from tests.support.waiting import wait_until
from translators.s3.spans import trace_calls

ARTIFACT = gzip(make_tar(site()))
#: Without the test process's own OTEL_* variables, whatever they are.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


def otel_env(receiver: OtlpReceiver, **extra: str) -> dict[str, str]:
    return {
        **CLEAN_ENV,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        **extra,
    }


def new_parent() -> tuple[str, str]:
    """A caller's (trace id, span id), as a tracing client would send them."""
    return secrets.token_hex(16), secrets.token_hex(8)


def with_traceparent(s3: Any, trace_id: str, span_id: str) -> Any:
    """``s3`` sending a sampled W3C ``traceparent`` on every request (added after signing:
    an unsigned header, as a tracing proxy in front of the gateway would add it)."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers["traceparent"] = f"00-{trace_id}-{span_id}-01"

    s3.meta.events.register("before-send.s3", add_header)
    return s3


def names(spans: list[ReceivedSpan]) -> list[str]:
    return sorted(span.name for span in spans)


# Configuration


def test_off_by_default_and_when_disabled() -> None:
    assert tracing_config({}) is None
    assert tracing_config({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}) is None
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert tracing_config({**endpoint, "OTEL_SDK_DISABLED": "true"}) is None
    assert tracing_config({**endpoint, "OTEL_SDK_DISABLED": "TRUE"}) is None
    assert tracing_config({**endpoint, "OTEL_TRACES_EXPORTER": "none"}) is None
    assert tracing_config({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}) is None


def test_on_by_an_endpoint_or_the_exporter() -> None:
    assert tracing_config({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}) == (
        TracingConfig(endpoint="http://collector:4318/v1/traces")
    )
    assert tracing_config({"OTEL_TRACES_EXPORTER": "otlp"}) == TracingConfig()
    assert TracingConfig().endpoint == DEFAULT_ENDPOINT
    assert TracingConfig().service_name == "pagewright-gateway"
    config = tracing_config(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector/custom/path",
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=secret%20value, x-team = web",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2500",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
            "OTEL_SERVICE_NAME": "edge-gateway",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.name=other",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
    )
    assert config is not None
    assert config.endpoint == "https://collector/custom/path"  # the traces one, verbatim
    assert config.headers == (("api-key", "secret value"), ("x-team", "web"))
    assert "secret" not in repr(config)
    assert (config.timeout_ms, config.compression) == (2500, "gzip")
    assert config.service_name == "edge-gateway"  # OTEL_SERVICE_NAME wins
    assert ("deployment.environment", "prod") in config.resource_attributes
    assert (config.sampler, config.sampler_ratio) == ("parentbased_traceidratio", 0.25)
    assert config.schedule_delay_ms == 100


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "a=b,c"),
        ("OTEL_TRACES_SAMPLER", "xray"),
        ("OTEL_TRACES_SAMPLER_ARG", "half"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1.5s"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0"),
    ],
)
def test_a_malformed_variable_is_named(variable: str, value: str) -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", variable: value}
    with pytest.raises(SettingsError, match=variable):
        tracing_config(environ)


# In process, over the memory translator


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running_receiver:
        yield running_receiver


def test_the_span_tree_of_a_put_in_process(
    tmp_path: Path, receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pagewright.access")
    trace_id, parent_id = new_parent()
    with in_process_gateway(tmp_path / "data", environ=otel_env(receiver)) as gateway:
        s3 = with_traceparent(make_s3_client(gateway), trace_id, parent_id)
        s3.create_bucket(Bucket="traced")
        put = s3.put_object(Bucket="traced", Key="builds/1.tar.gz", Body=ARTIFACT)
        request_id = put["ResponseMetadata"]["RequestId"]
        httpx.get(f"{gateway.endpoint}/healthz").raise_for_status()
        httpx.get(f"{gateway.endpoint}/_pagewright/v1/openapi.json").raise_for_status()
        key = create_api_key(gateway)
        httpx.get(
            f"{gateway.endpoint}{API}/sites/traced/artifacts",
            headers={
                "Authorization": f"Bearer {key}",
                "traceparent": f"00-{trace_id}-{parent_id}-01",
            },
        ).raise_for_status()
    # The gateway stopped: its shutdown exported every span still queued.

    server = receiver.one("PutObject", trace_id)
    assert (server.kind, server.parent_id) == (SERVER, parent_id)
    assert server.attributes["http.request.method"] == "PUT"
    assert server.attributes["url.path"] == "/traced/builds/1.tar.gz"
    assert server.attributes["server.address"] == "127.0.0.1"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["pagewright.operation"] == "PutObject"
    assert server.attributes["pagewright.site"] == "traced"
    assert server.attributes["pagewright.request_id"] == request_id
    assert server.service["service.name"] == "pagewright-gateway"
    steps = receiver.children(server)
    assert names(steps) == [
        "authenticate",
        "authorize",
        "catalog.write",
        "quota.release",
        "quota.reserve",
        "validation",
    ]
    assert all(step.kind == INTERNAL for step in steps)
    validation = next(step for step in steps if step.name == "validation")
    (write,) = receiver.children(validation)
    assert write.name == "backend.put_object"
    assert write.attributes["pagewright.backend"] == "memory"
    assert write.attributes["pagewright.site"] == "traced"
    authorize = next(step for step in steps if step.name == "authorize")
    assert authorize.attributes["pagewright.action"] == "s3:PutObject"
    assert authorize.attributes["pagewright.allowed"] is True

    # The access line of the request carries its trace id and server span id.
    (line,) = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    assert (getattr(line, "trace_id", None), getattr(line, "span_id", None)) == (
        trace_id,
        server.span_id,
    )
    # The bucket's creation is a trace of its own, under the same caller.
    assert receiver.one("CreateBucket", trace_id).parent_id == parent_id
    # The artifact API's requests are named by their route; probes are not traced.
    api = receiver.one("GetOpenApi")
    assert (api.kind, api.parent_id) == (SERVER, "")
    assert api.attributes["http.response.status_code"] == 200
    assert not [s for s in receiver.spans if s.attributes.get("url.path") == "/healthz"]
    listing = receiver.one("ListArtifacts", trace_id)
    assert (listing.kind, listing.parent_id) == (SERVER, parent_id)
    assert listing.attributes["pagewright.site"] == "traced"
    assert {"authenticate", "authorize"} <= set(names(receiver.children(listing)))


def test_a_refused_signature_in_process(tmp_path: Path, receiver: OtlpReceiver) -> None:
    trace_id, parent_id = new_parent()
    with in_process_gateway(tmp_path / "data", environ=otel_env(receiver)) as gateway:
        s3 = make_s3_client(gateway)
        s3.create_bucket(Bucket="refused")
        wrong = boto3.client(
            "s3",
            endpoint_url=gateway.endpoint,
            aws_access_key_id=gateway.access_key,
            aws_secret_access_key="not-the-secret",
            region_name=gateway.region,
        )
        with pytest.raises(ClientError):
            with_traceparent(wrong, trace_id, parent_id).put_object(
                Bucket="refused", Key="k", Body=b"x"
            )
    server = receiver.one("PutObject", trace_id)
    assert server.attributes["http.response.status_code"] == 403
    assert server.status != STATUS_ERROR  # the client's error, not the server's
    (authenticate,) = receiver.children(server)
    assert authenticate.name == "authenticate"
    assert authenticate.status == STATUS_ERROR


def test_off_by_default_no_spans_no_exporter(
    tmp_path: Path, receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pagewright.access")
    before = set(threading.enumerate())
    with in_process_gateway(tmp_path / "data", environ=CLEAN_ENV) as gateway:
        assert gateway.app.tracing is None
        validation = gateway.app.stack.backend
        while not isinstance(validation, ValidationBackend):
            validation = validation.inner  # type: ignore[attr-defined]
        assert not isinstance(validation.inner, BackendSpans)
        s3 = with_traceparent(make_s3_client(gateway), *new_parent())
        s3.create_bucket(Bucket="untraced")
        put = s3.put_object(Bucket="untraced", Key="builds/1.tar.gz", Body=ARTIFACT)
        started = set(threading.enumerate()) - before
        assert not [t.name for t in started if "Otel" in t.name], started
    request_id = put["ResponseMetadata"]["RequestId"]
    (line,) = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    assert not hasattr(line, "trace_id")
    assert receiver.requests == 0


# A gateway process over the S3 translator (moto_server)


@pytest.mark.server
def test_the_span_tree_of_a_put_through_the_s3_backend(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    trace_id, parent_id = new_parent()
    with running(start_moto, tmp_path) as moto:
        boto3.client(
            "s3",
            endpoint_url=moto.endpoint,
            aws_access_key_id=moto.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=moto.env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        ).create_bucket(Bucket="pw-traced")
        env = {**moto.env, **otel_env(receiver), "PWG_LOG_LEVEL": "info"}
        with running_gateway(
            tmp_path / "data", "--backend", "s3://pw-traced/sites", env=env
        ) as server:
            s3 = make_s3_client(server)
            s3.create_bucket(Bucket="site")
            put = with_traceparent(s3, trace_id, parent_id).put_object(
                Bucket="site", Key="builds/7.tar.gz", Body=ARTIFACT
            )
            request_id = put["ResponseMetadata"]["RequestId"]
            receiver.wait_for("PutObject", "S3.PutObject", "catalog.write")

            def access_lines() -> list[dict[str, Any]]:
                return [
                    record
                    for line in server.log_path.read_text().splitlines()
                    if line.startswith("{")
                    and (record := json.loads(line)).get("request_id") == request_id
                    and record["message"] == "request"
                ]

            assert wait_until(lambda: bool(access_lines()))
    root = receiver.one("PutObject", trace_id)
    assert (root.kind, root.parent_id) == (SERVER, parent_id)
    assert root.attributes["pagewright.operation"] == "PutObject"
    steps = {step.name: step for step in receiver.children(root)}
    assert {"authenticate", "authorize", "quota.reserve", "validation", "catalog.write"} <= set(
        steps
    )
    writes = receiver.children(steps["validation"])
    assert names(writes) == ["backend.put_object"]
    assert writes[0].attributes["pagewright.backend"] == "s3"
    calls = receiver.children(writes[0])
    assert "S3.PutObject" in names(calls)
    sdk_put = next(call for call in calls if call.name == "S3.PutObject")
    assert sdk_put.kind == CLIENT
    assert sdk_put.attributes["rpc.system"] == "aws-api"
    assert sdk_put.attributes["rpc.method"] == "PutObject"
    assert sdk_put.attributes["http.response.status_code"] == 200
    assert sdk_put.attributes["aws.request_id"]
    (line,) = access_lines()
    assert (line["trace_id"], line["span_id"]) == (trace_id, root.span_id)


# The pieces, on an in-memory exporter


@pytest.fixture
def memory_tracer() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


async def _serve(app: Any, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/site/key",
        "raw_path": b"/site/key",
        "query_string": b"a=b",
        "headers": headers,
        "scheme": "http",
        "http_version": "1.1",
        "client": ("10.0.0.9", 5555),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def _failing(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 503, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _raising(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("boom")


def test_server_spans_mark_5xx_and_exceptions_and_ignore_a_bad_traceparent(
    memory_tracer: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = memory_tracer
    headers = [(b"host", b"[::1]:9000"), (b"traceparent", b"00-not-a-valid-parent-01")]
    anyio.run(_serve, ServerSpans(_failing, tracer), headers)
    with pytest.raises(RuntimeError):
        anyio.run(_serve, ServerSpans(_raising, tracer), [(b"host", b"gw.example")])
    failing, raising = exporter.get_finished_spans()
    assert failing.name == "GET"  # nothing named it by an operation
    assert failing.parent is None  # the malformed traceparent is ignored
    assert failing.status.status_code == StatusCode.ERROR
    assert failing.attributes is not None
    assert failing.attributes["http.response.status_code"] == 503
    assert failing.attributes["url.path"] == "/site/key"
    assert (failing.attributes["server.address"], failing.attributes["server.port"]) == (
        "::1",
        9000,
    )
    assert failing.attributes["network.peer.address"] == "10.0.0.9"
    assert raising.status.status_code == StatusCode.ERROR
    assert raising.attributes is not None
    assert raising.attributes["server.address"] == "gw.example"
    assert [event.name for event in raising.events] == ["exception"]


def test_botocore_spans_only_while_a_request_is_traced(
    memory_tracer: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = memory_tracer
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        aws_access_key_id="a",
        aws_secret_access_key="b",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    trace_calls(client)
    with pytest.raises(EndpointConnectionError):
        client.head_bucket(Bucket="b")
    assert exporter.get_finished_spans() == ()
    with tracing_with(tracer), span("backend.head_bucket"), pytest.raises(EndpointConnectionError):
        client.head_bucket(Bucket="b")
    call, backend = exporter.get_finished_spans()
    assert (call.name, call.kind) == ("S3.HeadBucket", SpanKind.CLIENT)
    assert call.parent is not None
    assert call.parent.span_id == backend.context.span_id
    assert call.status.status_code == StatusCode.ERROR
    assert call.attributes is not None
    assert call.attributes["error.type"] == "EndpointConnectionError"
