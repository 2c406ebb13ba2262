"""Pieces shared by ``validation_cost`` and ``backends``, on ``loadgen`` and ``compare_rclone``.

Servers (the gateway, storage emulators) are started while this process is briefly pinned to
the server CPU, so they inherit that affinity from the start (a Go runtime then sizes
GOMAXPROCS to it); the load generator then returns to its own CPU, as in ``compare_rclone``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.compare_rclone import (
    ACCESS_KEY,
    LOADGEN_CPU,
    MIB,
    REGION,
    SECRET_KEY,
    SERVER_CPU,
    CpuMeter,
    _raise_interrupt,
    log,
)
from benchmarks.loadgen import LoadResult, Response, closed_loop, slices, transfer
from tests.support.servers import GatewayServer, start_gateway

MAX_REQUESTS = 5_000_000
#: A 64 MiB transfer slower than this (about 0.5 MiB/s) counts as failed.
TRANSFER_TIME_LIMIT = 120.0


def pinning_available() -> bool:
    return {SERVER_CPU, LOADGEN_CPU} <= os.sched_getaffinity(0)


def pin_loadgen(notes: list[str]) -> None:
    """Pin this process (the load generator) to its CPU, or note why not."""
    if pinning_available():
        os.sched_setaffinity(0, {LOADGEN_CPU})
    else:
        notes.append(f"CPUs {sorted(os.sched_getaffinity(0))} available: processes not pinned")


@contextlib.contextmanager
def on_server_cpu() -> Iterator[None]:
    """Run the block pinned to the server CPU: processes started in it inherit the pinning."""
    if not pinning_available():
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {SERVER_CPU})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def start_bench_gateway(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> GatewayServer:
    """``tests.support.servers.start_gateway`` with the benchmark credentials, on the server CPU."""
    environment = {
        **(env or {}),
        "PWG_ROOT_ACCESS_KEY": ACCESS_KEY,
        "PWG_ROOT_SECRET_KEY": SECRET_KEY,
        "PWG_REGION": REGION,
    }
    with on_server_cpu():
        return start_gateway(data_dir, *args, env=environment)


def handle_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt, even if SIGINT was inherited ignored."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} CPUs)"


def ok_with_length(length: int) -> Callable[[Response], bool]:
    return lambda response: 200 <= response.status < 300 and response.body_length == length


@dataclass
class RatePhase:
    """A closed-loop phase: requests per second, and the server's CPU seconds per request."""

    run: LoadResult
    server_cpu: float  # CPU seconds per wall-clock second, all ``pids`` together
    loadgen_cpu: float
    per_pid: tuple[float, ...] = ()  # CPU seconds per wall-clock second, each of ``pids``

    def cpu_ms_by_pid(self) -> tuple[float, ...]:
        """Each server's CPU milliseconds per successful request, in ``pids`` order."""
        done, elapsed = self.run.completed, self.run.elapsed
        return tuple(busy * elapsed / done * 1000 if done else 0.0 for busy in self.per_pid)

    @property
    def cpu_ms_per_request(self) -> float:
        return (
            self.server_cpu * self.run.elapsed / self.run.completed * 1000
            if self.run.completed
            else 0.0
        )


async def rate_phase(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    pids: Sequence[int],
    concurrency: int,
    duration: float,
    warmup: float,
    accept: Callable[[Response], bool] | None = None,
) -> RatePhase:
    """Warm up for ``warmup`` s, then replay ``requests`` for ``duration`` s."""
    if warmup > 0:
        await closed_loop(
            host,
            port,
            requests,
            concurrency=concurrency,
            duration=warmup,
            max_requests=MAX_REQUESTS,
            accept=accept,
        )
    meters = [CpuMeter(pid) for pid in pids]
    start = time.perf_counter()
    run = await closed_loop(
        host,
        port,
        requests,
        concurrency=concurrency,
        duration=duration,
        max_requests=MAX_REQUESTS,
        accept=accept,
    )
    elapsed = time.perf_counter() - start
    busy = [meter.busy(elapsed) for meter in meters]
    server = sum(server for server, _ in busy)
    loadgen = busy[0][1] if busy else 0.0
    if loadgen > 0.9:
        log(f"  warning: the load generator was {loadgen:.0%} busy: it may be the limit")
    return RatePhase(run, server, loadgen, tuple(server for server, _ in busy))


async def seed(host: str, port: int, requests: Sequence[bytes], what: str) -> None:
    """Send each request once (16 at a time); every one must succeed."""
    run = await closed_loop(
        host,
        port,
        requests,
        concurrency=16,
        duration=600,
        max_requests=len(requests),
    )
    if run.failed or run.completed != len(requests):
        raise RuntimeError(f"seeding {what} failed: {run.first_failure}")


@dataclass
class Transfers:
    """Repeated one-at-a-time transfers of ``size`` bytes."""

    size: int
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # the servers', per transfer
    cpu_by_pid: list[float] = field(default_factory=list)  # each server's, all transfers
    failed: int = 0
    first_failure: str = ""

    @property
    def mibs(self) -> float:
        """Bytes over the sum of transfer times, in MiB/s."""
        total = sum(self.seconds)
        return len(self.seconds) * self.size / MIB / total if total else 0.0

    @property
    def best_mibs(self) -> float:
        return self.size / MIB / min(self.seconds) if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """The servers' mean CPU milliseconds per transfer."""
        return sum(self.cpu_seconds) / len(self.cpu_seconds) * 1000 if self.cpu_seconds else 0.0

    def cpu_ms_by_pid(self) -> tuple[float, ...]:
        """Each server's mean CPU milliseconds per transfer, in ``pids`` order."""
        count = len(self.cpu_seconds)
        return tuple(total / count * 1000 if count else 0.0 for total in self.cpu_by_pid)

    def note_failure(self, reason: str) -> None:
        self.failed += 1
        if not self.first_failure:
            self.first_failure = reason


async def one_transfer(
    host: str,
    port: int,
    request: bytes,
    body: bytes,
    *,
    size: int,
    pids: Sequence[int],
    into: Transfers,
) -> None:
    """One PUT (``body`` given) or GET (``body`` empty) on a fresh connection, into ``into``."""
    meters = [CpuMeter(pid) for pid in pids]
    try:
        done = await transfer(
            host, port, request, slices(body) if body else None, time_limit=TRANSFER_TIME_LIMIT
        )
    except (TimeoutError, ConnectionError, OSError) as error:
        into.note_failure(f"{type(error).__name__}: {error}")
        return
    # busy(1.0) is the CPU seconds used since the meter was made.
    per_pid = [meter.busy(1.0)[0] for meter in meters]
    response = done.response
    if not 200 <= response.status < 300 or (not body and response.body_length != size):
        into.note_failure(f"HTTP {response.status}, {response.body_length} bytes")
        return
    into.seconds.append(done.seconds)
    into.cpu_seconds.append(sum(per_pid))
    if not into.cpu_by_pid:
        into.cpu_by_pid = [0.0] * len(per_pid)
    into.cpu_by_pid = [total + used for total, used in zip(into.cpu_by_pid, per_pid, strict=True)]
