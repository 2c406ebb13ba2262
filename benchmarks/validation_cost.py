"""What artifact validation costs on a 64 MiB build artifact, PUT and GET through the gateway.

Two gateways (filesystem backend) run pinned to CPU 0: one with the default policy (artifact
keys are validated as gzip + tar while they stream, and hashed with SHA256), one started with
``[policy] validate_archives = false`` (SHA256 only). The same 64 MiB ``.tar.gz`` bytes are
uploaded as an artifact (``builds/<n>.tar.gz``) to each, and as an ordinary object
(``blobs/<n>.bin``, neither validated nor hashed) to the first; then downloaded whole, as an
artifact (re-hashed while it streams) and as an ordinary object.

    .venv/bin/python -m benchmarks.validation_cost [--repeats N] [--json]

Progress goes to stderr; the result (a markdown table, or JSON with ``--json``) to stdout.
See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import io
import json
import random
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop

from benchmarks.compare_rclone import LOADGEN_CPU, MIB, SERVER_CPU, Signer, log
from benchmarks.harness import (
    TRANSFER_TIME_LIMIT,
    Transfers,
    handle_signals,
    load_average,
    one_transfer,
    pin_loadgen,
    start_bench_gateway,
)
from benchmarks.loadgen import slices, transfer
from tests.support.servers import GatewayServer

ARTIFACT_SIZE = 64 * MIB
SEED = 20261126
SITE = "bench-site"
MTIME = 1_700_000_000


# ---------------------------------------------------------------------------------------------
# the artifact


@dataclass(frozen=True)
class Artifact:
    """A built ``.tar.gz`` and what is inside it."""

    data: bytes
    members: int
    uncompressed: int  # bytes of member data
    incompressible: int  # bytes of member data that are random (images, fonts)

    def describe(self) -> str:
        return (
            f"{len(self.data) / MIB:.2f} MiB .tar.gz, {self.members:,} files, "
            f"{self.uncompressed / MIB:.1f} MiB uncompressed "
            f"({self.incompressible / self.uncompressed:.0%} of it random bytes), "
            f"ratio {self.uncompressed / len(self.data):.2f}"
        )


def _text_pool(rng: random.Random) -> list[str]:
    """Sentences of pseudo-words: text that compresses about as well as a site's HTML/CSS/JS."""
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [26 - i for i in range(len(letters))]
    words = ["".join(rng.choices(letters, weights, k=rng.randint(2, 10))) for _ in range(3000)]
    return [" ".join(rng.choices(words, k=rng.randint(6, 18))) for _ in range(6000)]


def _html(rng: random.Random, pool: list[str], size: int) -> bytes:
    lines = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">']
    lines.append(f"<title>{rng.choice(pool)}</title>")
    lines.append('<link rel="stylesheet" href="/assets/site.css"></head><body>')
    length = sum(len(line) for line in lines)
    while length < size:
        tag = rng.choice(("p", "li", "h2", "td", "span"))
        line = f'<{tag} class="c{rng.randint(0, 99)}">{rng.choice(pool)}</{tag}>'
        lines.append(line)
        length += len(line) + 1
    lines.append("</body></html>")
    return "\n".join(lines).encode()


def _css(rng: random.Random, pool: list[str], size: int) -> bytes:
    rules: list[str] = []
    length = 0
    while length < size:
        words = rng.choice(pool).split()
        rule = (
            f".{words[0]}-{rng.randint(0, 999)} {{ margin: {rng.randint(0, 64)}px; "
            f"color: #{rng.randrange(1 << 24):06x}; font-family: {words[-1]}; }}"
        )
        rules.append(rule)
        length += len(rule) + 1
    return "\n".join(rules).encode()


def _js(rng: random.Random, pool: list[str], size: int) -> bytes:
    lines: list[str] = []
    length = 0
    while length < size:
        words = rng.choice(pool).split()
        line = f"function {words[0]}{rng.randint(0, 9999)}(a,b){{return a.{words[-1]}(b)}};"
        lines.append(line)
        length += len(line) + 1
    return "\n".join(lines).encode()


def build_artifact(target: int = ARTIFACT_SIZE, seed: int = SEED) -> Artifact:
    """A deterministic static site as a gzip'd tar of about ``target`` bytes.

    Pages (HTML), stylesheets and scripts are text; images and fonts are random bytes, so
    gzip finds nothing to compress in them, as in real PNG/JPEG/WOFF2 files.
    """
    rng = random.Random(seed)
    pool = _text_pool(rng)
    out = io.BytesIO()
    members = uncompressed = incompressible = 0
    with (
        gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        # out.tell() lags the stream by zlib's buffer: stop a little early.
        while out.tell() < target - 256 * 1024:
            kind = rng.choices(("html", "css", "js", "image", "font"), (46, 8, 14, 29, 3))[0]
            if kind == "html":
                name, data = (
                    f"docs/{members // 100:03d}/page-{members}.html",
                    _html(rng, pool, rng.randint(2_000, 60_000)),
                )
            elif kind == "css":
                name, data = (
                    f"assets/css/{members}.css",
                    _css(rng, pool, rng.randint(1_000, 40_000)),
                )
            elif kind == "js":
                name, data = f"assets/js/{members}.js", _js(rng, pool, rng.randint(4_000, 200_000))
            elif kind == "image":
                extension = rng.choice(("png", "jpg", "webp"))
                name = f"assets/img/{members // 100:03d}/{members}.{extension}"
                data = rng.randbytes(rng.randint(8_000, 250_000))
                incompressible += len(data)
            else:
                name, data = (
                    f"assets/fonts/{members}.woff2",
                    rng.randbytes(rng.randint(20_000, 90_000)),
                )
                incompressible += len(data)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = MTIME
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
            members += 1
            uncompressed += len(data)
    return Artifact(out.getvalue(), members, uncompressed, incompressible)


# ---------------------------------------------------------------------------------------------
# measuring


@dataclass(frozen=True)
class Case:
    """One kind of transfer: which gateway, which method, which key (``{n}`` numbers it)."""

    key: str  # short name in JSON
    label: str
    gateway: str  # "validating" or "unvalidated"
    method: str
    key_pattern: str
    baseline: str | None  # the case this one's relative cost is measured against


PUT_CASES = (
    Case(
        "put_blob",
        "PUT `blobs/<n>.bin` (not an artifact)",
        "validating",
        "PUT",
        "blobs/{n}.bin",
        None,
    ),
    Case(
        "put_sha256",
        "PUT `builds/<n>.tar.gz`, `validate_archives = false` (SHA256)",
        "unvalidated",
        "PUT",
        "builds/{n}.tar.gz",
        "put_blob",
    ),
    Case(
        "put_validated",
        "PUT `builds/<n>.tar.gz`, validated (gzip + tar + SHA256)",
        "validating",
        "PUT",
        "builds/{n}.tar.gz",
        "put_blob",
    ),
)
GET_CASES = (
    Case(
        "get_blob", "GET `blobs/0.bin` (not an artifact)", "validating", "GET", "blobs/0.bin", None
    ),
    Case(
        "get_artifact",
        "GET `builds/0.tar.gz` whole (SHA256 re-hash)",
        "validating",
        "GET",
        "builds/0.tar.gz",
        "get_blob",
    ),
)
CASES = PUT_CASES + GET_CASES
#: (label, case, against): the cost of one step, as the difference of two cases.
STEPS = (
    ("SHA256 of an artifact on PUT", "put_sha256", "put_blob"),
    ("gzip + tar validation on PUT", "put_validated", "put_sha256"),
    ("SHA256 re-hash on GET", "get_artifact", "get_blob"),
)


@dataclass(frozen=True)
class Options:
    repeats: int
    as_json: bool


class Bench:
    def __init__(self, gateways: dict[str, GatewayServer], artifact: Artifact) -> None:
        self.gateways = gateways
        self.signers = {name: Signer(server.endpoint) for name, server in gateways.items()}
        self.artifact = artifact
        self.results = {case.key: Transfers(len(artifact.data)) for case in CASES}

    def request(self, gateway: str, method: str, key: str) -> bytes:
        operation = {"PUT": "put_object", "GET": "get_object", "DELETE": "delete_object"}[method]
        length = len(self.artifact.data) if method == "PUT" else None
        return self.signers[gateway].request(
            method, operation, {"Bucket": SITE, "Key": key}, length
        )

    async def send(self, gateway: str, method: str, key: str, body: bytes = b"") -> int:
        server = self.gateways[gateway]
        done = await transfer(
            "127.0.0.1",
            server.port,
            self.request(gateway, method, key),
            slices(body) if body else None,
            time_limit=TRANSFER_TIME_LIMIT,
        )
        return done.response.status

    async def run_case(self, case: Case, n: int, *, into: Transfers | None) -> None:
        server = self.gateways[case.gateway]
        body = self.artifact.data if case.method == "PUT" else b""
        sink = into if into is not None else Transfers(len(self.artifact.data))
        await one_transfer(
            "127.0.0.1",
            server.port,
            self.request(case.gateway, case.method, case.key_pattern.format(n=n)),
            body,
            size=len(body) or len(self.artifact.data),
            pids=[server.process.pid],
            into=sink,
        )
        if into is None and sink.failed:
            raise RuntimeError(f"warm-up {case.label}: {sink.first_failure}")

    async def check_policies(self) -> None:
        """A truncated artifact is refused by the validating gateway only: the config took."""
        truncated = self.artifact.data[: 4 * MIB]
        refused = await self._put_bytes("validating", "builds/truncated.tar.gz", truncated)
        accepted = await self._put_bytes("unvalidated", "builds/truncated.tar.gz", truncated)
        if refused != 400 or accepted != 200:
            raise RuntimeError(
                f"a truncated artifact got HTTP {refused} (validating gateway, expected 400) and"
                f" HTTP {accepted} (validate_archives = false, expected 200)"
            )

    async def _put_bytes(self, gateway: str, key: str, body: bytes) -> int:
        server = self.gateways[gateway]
        head = self.signers[gateway].request(
            "PUT", "put_object", {"Bucket": SITE, "Key": key}, len(body)
        )
        done = await transfer(
            "127.0.0.1", server.port, head, slices(body), time_limit=TRANSFER_TIME_LIMIT
        )
        return done.response.status

    async def run(self, repeats: int) -> None:
        for name, signer in self.signers.items():
            signer.client.create_bucket(Bucket=SITE)
            log(f"  {name} gateway: PID {self.gateways[name].process.pid}")
        await self.check_policies()
        log("  warm-up round (creates the objects the GETs read)")
        for case in CASES:
            await self.run_case(case, 0, into=None)
        for n in range(1, repeats + 1):
            # Rotate the order each round, so no case always runs first or last.
            puts = PUT_CASES[n % len(PUT_CASES) :] + PUT_CASES[: n % len(PUT_CASES)]
            gets = GET_CASES[n % len(GET_CASES) :] + GET_CASES[: n % len(GET_CASES)]
            for case in puts + gets:
                await self.run_case(case, n, into=self.results[case.key])
            for case in puts:  # keep disk use bounded: one copy per case
                await self.send(case.gateway, "DELETE", case.key_pattern.format(n=n))
            log(
                f"  round {n}/{repeats}: "
                + ", ".join(
                    f"{case.key} {self.artifact_mib / self.results[case.key].seconds[-1]:.0f}"
                    for case in CASES
                    if self.results[case.key].seconds
                )
                + " MiB/s"
            )

    @property
    def artifact_mib(self) -> float:
        return len(self.artifact.data) / MIB


# ---------------------------------------------------------------------------------------------
# report


def _percent(value: float, base: float) -> str:
    if base <= 0 or value <= 0:
        return "—"
    return f"{(value / base - 1) * 100:+.0f} %"


def _ms_per_transfer(result: Transfers) -> float:
    return sum(result.seconds) / len(result.seconds) * 1000 if result.seconds else 0.0


def markdown(bench: Bench, options: Options, notes: list[str]) -> str:
    results = bench.results
    lines = [
        "| transfer (64 MiB) | MiB/s | best MiB/s | ms / transfer | vs baseline, time |"
        " server CPU ms / transfer | vs baseline, CPU |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in CASES:
        result = results[case.key]
        base = results[case.baseline] if case.baseline else None
        time_cost = (
            _percent(_ms_per_transfer(result), _ms_per_transfer(base)) if base else "baseline"
        )
        cpu_cost = _percent(result.cpu_ms, base.cpu_ms) if base else "baseline"
        lines.append(
            f"| {case.label} | {result.mibs:,.0f} | {result.best_mibs:,.0f} |"
            f" {_ms_per_transfer(result):,.0f} | {time_cost} | {result.cpu_ms:,.0f} | {cpu_cost} |"
        )
    lines += [
        "",
        "| step | extra ms / 64 MiB transfer | extra server CPU ms | CPU cost |",
        "|---|---:|---:|---:|",
    ]
    for label, measured, against in STEPS:
        extra_ms = _ms_per_transfer(results[measured]) - _ms_per_transfer(results[against])
        extra_cpu = results[measured].cpu_ms - results[against].cpu_ms
        per_mib = extra_cpu / bench.artifact_mib
        lines.append(f"| {label} | {extra_ms:,.0f} | {extra_cpu:,.0f} | {per_mib:.1f} ms/MiB |")
    lines.append("")
    lines.append(
        f"{options.repeats} timed rounds after one warm-up round; one transfer at a time, each on"
        f" a fresh connection; gateways on CPU {SERVER_CPU}, load generator on CPU {LOADGEN_CPU}."
    )
    lines.extend(f"- {note}" for note in notes)
    failures = [
        f"{case.label}: {results[case.key].failed} failed, first: {results[case.key].first_failure}"
        for case in CASES
        if results[case.key].failed
    ]
    lines.extend(f"- **failed**: {failure}" for failure in failures)
    return "\n".join(lines)


def as_json(bench: Bench, options: Options, notes: list[str]) -> str:
    document = {
        "options": {"repeats": options.repeats},
        "artifact": {
            "bytes": len(bench.artifact.data),
            "members": bench.artifact.members,
            "uncompressed_bytes": bench.artifact.uncompressed,
            "random_bytes": bench.artifact.incompressible,
        },
        "cases": {
            case.key: {
                "label": case.label,
                "baseline": case.baseline,
                "mibs": bench.results[case.key].mibs,
                "best_mibs": bench.results[case.key].best_mibs,
                "seconds": bench.results[case.key].seconds,
                "server_cpu_seconds": bench.results[case.key].cpu_seconds,
                "failed": bench.results[case.key].failed,
                "first_failure": bench.results[case.key].first_failure,
            }
            for case in CASES
        },
        "notes": notes,
    }
    return json.dumps(document, indent=2, allow_nan=False)


# ---------------------------------------------------------------------------------------------
# main


def _parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="benchmarks.validation_cost", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args(argv)
    if not 1 <= args.repeats <= 1000:
        parser.error("--repeats must be between 1 and 1000")
    return Options(repeats=args.repeats, as_json=args.json)


@contextlib.contextmanager
def gateways(workdir: Path) -> Iterator[dict[str, GatewayServer]]:
    """The validating and the unvalidated gateway, each over its own data dir; stopped on exit."""
    config = workdir / "unvalidated.toml"
    config.write_text("[policy]\nvalidate_archives = false\n")
    started: dict[str, GatewayServer] = {}
    try:
        for name, args in (("validating", ()), ("unvalidated", ("--config", str(config)))):
            data_dir = workdir / name / "data"
            data_dir.mkdir(parents=True)
            started[name] = start_bench_gateway(data_dir, *args)
        yield started
    finally:
        for server in started.values():
            server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    options = _parse(argv)
    handle_signals()
    notes: list[str] = []
    pin_loadgen(notes)
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < 2 * 1024**3:
        raise SystemExit(f"{tempfile.gettempdir()} has {free / 1024**3:.1f} GiB free; need 2 GiB")
    workdir = Path(tempfile.mkdtemp(prefix="pwg-bench-validation-"))
    try:
        log("building the artifact")
        started = time.perf_counter()
        artifact = build_artifact()
        log(f"  {artifact.describe()} in {time.perf_counter() - started:.1f} s")
        notes.append(f"artifact: {artifact.describe()}")
        notes.append(f"load average before: {load_average()}")
        with (
            gateways(workdir) as servers,
            asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
        ):
            bench = Bench(servers, artifact)
            runner.run(bench.run(options.repeats))
        notes.append(f"load average after: {load_average()}")
    except KeyboardInterrupt:
        log("interrupted: gateways stopped, temporary folders removed")
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = as_json if options.as_json else markdown
    print(report(bench, options, notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
