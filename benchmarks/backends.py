"""The gateway on each storage backend, beside the same load sent to that backend directly.

For each backend (filesystem; S3 on moto_server; Azure Blob on Azurite; GCS on
fake-gcs-server) a gateway runs with ``--backend`` pointed at the emulator, and this process
(the load generator, pinned to CPU 1) measures 4 KiB GET and PUT ops/s and 64 MiB GET and PUT
MiB/s through it, then the same requests sent straight to the emulator:

* **S3**: the same presigned SigV4 URLs (UNSIGNED-PAYLOAD), signed for moto's endpoint.
* **Azure**: Get Blob / Put Blob (one ``BlockBlob`` request per object, as the SDK sends a
  body under its single-upload limit) with a container SAS token in the URL.
* **GCS**: the JSON API's media upload (``POST /upload/storage/v1/b/B/o?uploadType=media``)
  and ``GET /storage/v1/b/B/o/KEY?alt=media``; the emulator needs no credentials.
* **filesystem**: no direct figure (``compare_rclone`` compares it with ``rclone serve s3``).

Every request is built once and replayed by ``loadgen`` (no signing per request). Servers
(gateway and emulator) run pinned to CPU 0. A backend whose translator is missing, or whose
emulator is not installed, is reported as "not available" in its row.

    .venv/bin/python -m benchmarks.backends [--backends filesystem,s3,azure,gcs]
        [--duration S] [--concurrency N] [--repeats N] [--json]

Progress goes to stderr; the result (a markdown table, or JSON with ``--json``) to stdout.
See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest
import uvloop

from benchmarks.compare_rclone import (
    LOADGEN_CPU,
    MEDIUM_SIZE,
    MIB,
    PRESIGN_EXPIRY,
    SERVER_CPU,
    SMALL_SIZE,
    Signer,
    Workload,
    log,
)
from benchmarks.harness import (
    Transfers,
    handle_signals,
    load_average,
    ok_with_length,
    on_server_cpu,
    one_transfer,
    pin_loadgen,
    rate_phase,
    seed,
    start_bench_gateway,
)
from tests.support.emulators import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    Emulator,
    start_azurite,
    start_fake_gcs,
    start_moto,
)
from tests.support.servers import GatewayServer

BACKENDS = ("filesystem", "s3", "azure", "gcs")
#: The translator module each remote backend needs.
TRANSLATORS = {
    "s3": "translators.s3.backend",
    "azure": "translators.azure.backend",
    "gcs": "translators.gcs.backend",
}
GATEWAY_BUCKET = "bench-site"
STORE = "pwg-bench-store"  # the emulator bucket/container the gateway stores in
DIRECT = "bench-direct"  # the emulator bucket/container the direct load uses
MEDIUM_KEY = "medium/blob-64m"
#: Phases, in table order: (key, label, unit).
PHASES = (
    ("get4k", "4 KiB GET", "ops/s"),
    ("put4k", "4 KiB PUT", "ops/s"),
    ("get64m", "64 MiB GET", "MiB/s"),
    ("put64m", "64 MiB PUT", "MiB/s"),
)
#: What "direct" means, per backend (printed under the table).
DIRECT_MEANS = {
    "filesystem": "no direct figure (see compare_rclone for the gateway against rclone)",
    "s3": "the same presigned S3 URLs, signed for moto_server",
    "azure": "Get Blob / Put Blob (one BlockBlob request) with a container SAS, to Azurite",
    "gcs": "JSON API media upload and alt=media download, to fake-gcs-server",
}


class Unavailable(Exception):
    """The backend cannot be measured here: translator or emulator missing, or no start."""


@dataclass(frozen=True)
class Target:
    """Where one side's load goes, and the requests it is made of."""

    host: str
    port: int
    pids: tuple[int, ...]  # server processes whose CPU time counts for this side
    small_gets: tuple[bytes, ...]
    small_puts: tuple[bytes, ...]  # with their bodies
    medium_get: bytes
    medium_put: bytes  # the head only; the body streams after it


@dataclass
class BackendResult:
    name: str
    status: str = "ok"  # or "not available: ..." / "failed: ..."
    gateway: dict[str, float] = field(default_factory=dict)
    direct: dict[str, float] = field(default_factory=dict)
    #: "<side> <phase>" -> CPU ms per request of each server (gateway side: gateway, emulator)
    cpu_ms: dict[str, tuple[float, ...]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Options:
    backends: tuple[str, ...]
    duration: float
    warmup: float
    concurrency: int
    repeats: int
    as_json: bool


# ---------------------------------------------------------------------------------------------
# requests


def s3_target(endpoint: str, bucket: str, workload: Workload, pids: tuple[int, ...]) -> Target:
    """Presigned S3 requests to ``endpoint`` (the gateway, or moto)."""
    signer = Signer(endpoint)
    port = int(endpoint.rsplit(":", 1)[1])

    def head(method: str, operation: str, key: str, length: int | None = None) -> bytes:
        return signer.request(method, operation, {"Bucket": bucket, "Key": key}, length)

    return Target(
        host="127.0.0.1",
        port=port,
        pids=pids,
        small_gets=tuple(head("GET", "get_object", key) for key in workload.small_keys),
        small_puts=tuple(
            head("PUT", "put_object", key, SMALL_SIZE) + body
            for key, body in zip(workload.small_keys, workload.small_bodies, strict=True)
        ),
        medium_get=head("GET", "get_object", MEDIUM_KEY),
        medium_put=head("PUT", "put_object", MEDIUM_KEY, MEDIUM_SIZE),
    )


def azure_target(emulator: Emulator, workload: Workload) -> Target:
    """Get Blob / Put Blob requests to Azurite, authorised by a container SAS in the URL."""
    from azure.storage.blob import (
        BlobServiceClient,
        ContainerSasPermissions,
        generate_container_sas,
    )

    connection = emulator.env["AZURE_STORAGE_CONNECTION_STRING"]
    with BlobServiceClient.from_connection_string(connection) as service:
        service.create_container(DIRECT)
    sas = generate_container_sas(
        AZURITE_ACCOUNT,
        DIRECT,
        account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, write=True, create=True),
        expiry=datetime.now(UTC) + timedelta(seconds=PRESIGN_EXPIRY),
    )
    version = parse_qs(sas)["sv"][0]
    netloc = emulator.endpoint.removeprefix("http://")

    def head(method: str, key: str, length: int | None = None) -> bytes:
        text = (
            f"{method} /{AZURITE_ACCOUNT}/{DIRECT}/{quote(key)}?{sas} HTTP/1.1\r\n"
            f"Host: {netloc}\r\nx-ms-version: {version}\r\n"
        )
        if length is not None:
            text += f"x-ms-blob-type: BlockBlob\r\nContent-Length: {length}\r\n"
        return (text + "\r\n").encode("ascii")

    return Target(
        host="127.0.0.1",
        port=int(netloc.rsplit(":", 1)[1]),
        pids=(emulator.process.pid,),
        small_gets=tuple(head("GET", key) for key in workload.small_keys),
        small_puts=tuple(
            head("PUT", key, SMALL_SIZE) + body
            for key, body in zip(workload.small_keys, workload.small_bodies, strict=True)
        ),
        medium_get=head("GET", MEDIUM_KEY),
        medium_put=head("PUT", MEDIUM_KEY, MEDIUM_SIZE),
    )


def gcs_target(emulator: Emulator, workload: Workload) -> Target:
    """JSON API media uploads and alt=media downloads to fake-gcs-server (no credentials)."""
    create = urllib.request.Request(
        f"{emulator.endpoint}/storage/v1/b?project=bench",
        data=json.dumps({"name": DIRECT}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(create, timeout=30).close()
    netloc = emulator.endpoint.removeprefix("http://")

    def get(key: str) -> bytes:
        return (
            f"GET /storage/v1/b/{DIRECT}/o/{quote(key, safe='')}?alt=media HTTP/1.1\r\n"
            f"Host: {netloc}\r\n\r\n"
        ).encode("ascii")

    def put(key: str, length: int) -> bytes:
        return (
            f"POST /upload/storage/v1/b/{DIRECT}/o?uploadType=media&name={quote(key, safe='')}"
            f" HTTP/1.1\r\nHost: {netloc}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode("ascii")

    return Target(
        host="127.0.0.1",
        port=int(netloc.rsplit(":", 1)[1]),
        pids=(emulator.process.pid,),
        small_gets=tuple(get(key) for key in workload.small_keys),
        small_puts=tuple(
            put(key, SMALL_SIZE) + body
            for key, body in zip(workload.small_keys, workload.small_bodies, strict=True)
        ),
        medium_get=get(MEDIUM_KEY),
        medium_put=put(MEDIUM_KEY, MEDIUM_SIZE),
    )


# ---------------------------------------------------------------------------------------------
# servers


_MISSING = (pytest.skip.Exception, pytest.fail.Exception)


def _start_emulator(name: str, start: Callable[[Path], Emulator], workdir: Path) -> Emulator:
    try:
        with on_server_cpu():
            return start(workdir)
    except _MISSING as missing:
        raise Unavailable(f"{name} emulator not installed ({missing})") from None
    except (RuntimeError, OSError) as error:
        raise Unavailable(f"{name} emulator did not start: {str(error).strip()[:200]}") from None


def _start_gateway(workdir: Path, backend: str, env: dict[str, str]) -> GatewayServer:
    data_dir = workdir / "gateway" / "data"
    data_dir.mkdir(parents=True)
    args = ("--backend", backend) if backend else ()
    try:
        return start_bench_gateway(data_dir, *args, env=env)
    except RuntimeError as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        reason = lines[-1] if lines else "no output"
        raise Unavailable(f"gateway did not start on {backend}: {reason[:200]}") from None


@contextlib.contextmanager
def backend_targets(
    name: str, workdir: Path, workload: Workload
) -> Iterator[tuple[Target, Target | None]]:
    """(gateway side, direct side) for backend ``name``; every process stops on exit."""
    module = TRANSLATORS.get(name)
    if module is not None and importlib.util.find_spec(module) is None:
        raise Unavailable(f"{module.replace('.', '/')}.py is missing")
    with contextlib.ExitStack() as stack:
        emulator: Emulator | None = None
        if name == "s3":
            emulator = _start_emulator("moto_server", start_moto, workdir)
        elif name == "azure":
            emulator = _start_emulator("Azurite", start_azurite, workdir)
        elif name == "gcs":
            emulator = _start_emulator("fake-gcs-server", start_fake_gcs, workdir)
        if emulator is not None:
            stack.callback(emulator.stop)
            log(f"  {emulator.name}: {emulator.endpoint}, PID {emulator.process.pid}")
        backend = "" if emulator is None else f"{name}://{STORE}?create=true"
        gateway = _start_gateway(workdir, backend, emulator.env if emulator else {})
        stack.callback(gateway.stop)
        log(f"  gateway on {backend or 'the filesystem'}: PID {gateway.process.pid}")
        Signer(gateway.endpoint).client.create_bucket(Bucket=GATEWAY_BUCKET)
        server_pids = (gateway.process.pid,) + ((emulator.process.pid,) if emulator else ())
        through = s3_target(gateway.endpoint, GATEWAY_BUCKET, workload, server_pids)
        direct: Target | None = None
        if name == "s3" and emulator is not None:
            Signer(emulator.endpoint).client.create_bucket(Bucket=DIRECT)
            direct = s3_target(emulator.endpoint, DIRECT, workload, (emulator.process.pid,))
        elif name == "azure" and emulator is not None:
            direct = azure_target(emulator, workload)
        elif name == "gcs" and emulator is not None:
            direct = gcs_target(emulator, workload)
        yield through, direct


# ---------------------------------------------------------------------------------------------
# measuring


async def measure_side(
    side: str, target: Target, workload: Workload, options: Options, result: BackendResult
) -> None:
    """Every phase against one side: seed, 4 KiB GET and PUT, 64 MiB PUT then GET."""
    figures = result.gateway if side == "gateway" else result.direct
    host, port = target.host, target.port
    await seed(host, port, target.small_puts, f"{result.name} {side}: 4 KiB objects")
    for key, requests, accept in (
        ("get4k", target.small_gets, ok_with_length(SMALL_SIZE)),
        ("put4k", target.small_puts, None),
    ):
        phase = await rate_phase(
            host,
            port,
            requests,
            pids=target.pids,
            concurrency=options.concurrency,
            duration=options.duration,
            warmup=options.warmup,
            accept=accept,
        )
        figures[key] = phase.run.rate
        result.cpu_ms[f"{side} {key}"] = phase.cpu_ms_by_pid()
        if phase.run.failed:
            result.failures.append(
                f"{side} {key}: {phase.run.failed} failed, first: {phase.run.first_failure}"
            )
        log(
            f"  {side} {key}: {phase.run.rate:,.0f} ops/s ({phase.run.completed} ok, "
            f"{phase.run.failed} failed; server CPU {phase.cpu_ms_per_request:.2f} ms/op)"
        )
    for key, request, body in (
        ("put64m", target.medium_put, workload.medium_body),
        ("get64m", target.medium_get, b""),
    ):
        warm = Transfers(MEDIUM_SIZE)
        await one_transfer(host, port, request, body, size=MEDIUM_SIZE, pids=target.pids, into=warm)
        transfers = Transfers(MEDIUM_SIZE)
        if warm.failed:
            transfers = warm
        else:
            for _ in range(options.repeats):
                await one_transfer(
                    host, port, request, body, size=MEDIUM_SIZE, pids=target.pids, into=transfers
                )
                if transfers.failed >= 2:
                    break
        figures[key] = transfers.mibs
        result.cpu_ms[f"{side} {key}"] = transfers.cpu_ms_by_pid()
        if transfers.failed:
            result.failures.append(
                f"{side} {key}: {transfers.failed} failed, first: {transfers.first_failure}"
            )
        log(
            f"  {side} {key}: {transfers.mibs:,.0f} MiB/s over {len(transfers.seconds)} "
            f"transfers (server CPU {transfers.cpu_ms:,.0f} ms each)"
        )


def run_backend(name: str, workload: Workload, options: Options) -> BackendResult:
    result = BackendResult(name)
    workdir = Path(tempfile.mkdtemp(prefix=f"pwg-bench-backend-{name}-"))
    try:
        with (
            backend_targets(name, workdir, workload) as (through, direct),
            asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
        ):
            runner.run(measure_side("gateway", through, workload, options, result))
            if direct is not None:
                runner.run(measure_side("direct", direct, workload, options, result))
    except Unavailable as reason:
        result.status = f"not available: {reason}"
    except Exception as error:  # one backend failing must not hide the others' figures
        result.status = f"failed: {type(error).__name__}: {str(error).strip()[:300]}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if result.status != "ok":
        log(f"  {result.status}")
    return result


# ---------------------------------------------------------------------------------------------
# report


def _cell(result: BackendResult, key: str) -> str:
    if result.status.startswith("not available"):
        return "not available"
    if key not in result.gateway:
        return "failed"
    through = f"{result.gateway[key]:,.0f}"
    if key not in result.direct:
        return f"{through} / —"
    direct = result.direct[key]
    ratio = f" ({result.gateway[key] / direct:.2f}x)" if direct else ""
    return f"{through} / {direct:,.0f}{ratio}"


def _cpu_cell(result: BackendResult, key: str) -> str:
    if result.status.startswith("not available"):
        return "not available"
    decimals = 2 if key.endswith("4k") else 0
    cells = []
    for side in ("gateway", "direct"):
        values = result.cpu_ms.get(f"{side} {key}")
        cells.append(" + ".join(f"{v:,.{decimals}f}" for v in values) if values else "—")
    return " / ".join(cells)


def markdown(results: Sequence[BackendResult], options: Options, notes: list[str]) -> str:
    header = " | ".join(f"{label} ({unit}) gateway / direct" for _, label, unit in PHASES)
    lines = [f"| backend | {header} |", "|---|" + "---:|" * len(PHASES)]
    for result in results:
        cells = " | ".join(_cell(result, key) for key, _, _ in PHASES)
        lines.append(f"| {result.name} | {cells} |")
    lines += [
        "",
        "Server CPU time per request, ms (gateway + emulator / emulator, directly):",
        "",
        f"| backend | {' | '.join(f'{label} gateway / direct' for _, label, _ in PHASES)} |",
        "|---|" + "---:|" * len(PHASES),
    ]
    for result in results:
        cells = " | ".join(_cpu_cell(result, key) for key, _, _ in PHASES)
        lines.append(f"| {result.name} | {cells} |")
    lines.append("")
    lines.append(
        f"4 KiB: {options.concurrency} connections, {options.duration:g} s per phase after "
        f"{options.warmup:g} s warm-up, 1,000 keys; 64 MiB: one transfer at a time, "
        f"{options.repeats} after one warm-up; (x) = gateway / direct. Servers (gateway and "
        f"emulator) on CPU {SERVER_CPU}, load generator on CPU {LOADGEN_CPU}."
    )
    for result in results:
        lines.append(f"- {result.name}: direct = {DIRECT_MEANS[result.name]}")
        if result.status != "ok":
            lines.append(f"- {result.name}: {result.status}")
        lines.extend(f"- {result.name}: **failed** {failure}" for failure in result.failures)
    lines.extend(f"- {note}" for note in notes)
    return "\n".join(lines)


def as_json(results: Sequence[BackendResult], options: Options, notes: list[str]) -> str:
    document = {
        "options": {
            "duration": options.duration,
            "warmup": options.warmup,
            "concurrency": options.concurrency,
            "repeats": options.repeats,
        },
        "backends": {
            result.name: {
                "status": result.status,
                "direct_means": DIRECT_MEANS[result.name],
                "gateway": result.gateway,
                "direct": result.direct,
                "server_cpu_ms_per_op": result.cpu_ms,
                "failures": result.failures,
            }
            for result in results
        },
        "notes": notes,
    }
    return json.dumps(document, indent=2, allow_nan=False)


# ---------------------------------------------------------------------------------------------
# main


def _parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="benchmarks.backends", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated subset of " + ", ".join(BACKENDS),
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per 4 KiB phase (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds (1)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed 64 MiB transfers (3)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args(argv)
    chosen = tuple(name.strip() for name in args.backends.split(",") if name.strip())
    unknown = set(chosen) - set(BACKENDS)
    if unknown or not chosen:
        parser.error(f"--backends: choose from {', '.join(BACKENDS)}")
    if args.duration <= 0 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--duration and --concurrency must be positive, --warmup >= 0")
    if not 1 <= args.repeats <= 100:
        parser.error("--repeats must be between 1 and 100")
    return Options(
        backends=chosen,
        duration=args.duration,
        warmup=args.warmup,
        concurrency=args.concurrency,
        repeats=args.repeats,
        as_json=args.json,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = _parse(argv)
    handle_signals()
    notes: list[str] = []
    pin_loadgen(notes)
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < 2 * 1024**3:
        raise SystemExit(f"{tempfile.gettempdir()} has {free / 1024**3:.1f} GiB free; need 2 GiB")
    notes.append(f"load average before: {load_average()}")
    workload = Workload.build(0)
    results: list[BackendResult] = []
    try:
        for name in options.backends:
            log(f"{name}:")
            results.append(run_backend(name, workload, options))
    except KeyboardInterrupt:
        log("interrupted: servers stopped, temporary folders removed")
        return 130
    notes.append(f"load average after: {load_average()}")
    notes.append(f"{MEDIUM_SIZE // MIB} MiB body: seeded pseudo-random bytes")
    report = as_json if options.as_json else markdown
    print(report(results, options, notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
