"""The conformance suite's fixtures: one ``harness`` per translator under test.

Every test here talks to the :class:`translators.base.Backend` interface only, so adding a
translator means adding a param below (and a ``_make_<name>`` factory), nothing else.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials

from core.context import RequestContext
from tests.support.emulators import Emulator, running
from translators.base import Backend
from translators.filesystem.backend import FilesystemBackend
from translators.memory.backend import MemoryBackend

CTX = RequestContext(request_id="conformance", principal="tester")
_bucket_names = itertools.count()


@dataclass
class Harness:
    """A started backend plus what the suite may know about it.

    ``min_part_size`` is the smallest non-last part the backend accepts on completion.
    ``relaxed_parts`` starts a second, separate backend that accepts parts of any size (so
    many-part completions stay fast), if the translator can. For local storage: ``restart``
    closes the backend and starts a fresh instance on the same storage, ``stored_files``
    lists every data and temp file, ``outside_root`` every file outside the data directory,
    ``plant_debris`` leaves, beside the given bucket, what a kill -9 mid-write or a failed
    cleanup would (a temp file, an orphaned blob, a native upload, a stale record), and
    ``leftovers`` names what of that debris is still stored.
    ``many_parts`` is how many parts the many-parts test uploads, lists and aborts: S3's
    maximum, 10,000, where that is cheap; 2,000 against an emulator, each of which slows
    down with the objects or blocks of one upload (10,000 parts took 19 minutes on Azurite
    and 5 on fake-gcs-server). Part numbers run from 1: moto pages ListParts by position.
    """

    backend: Backend
    min_part_size: int
    relaxed_parts: Callable[[], Awaitable[Backend]] | None = None
    restart: Callable[[], Awaitable[Backend]] | None = None
    stored_files: Callable[[], list[str]] | None = None
    outside_root: Callable[[], list[str]] | None = None
    plant_debris: Callable[[str], None] | None = None
    leftovers: Callable[[], list[str]] | None = None
    extra: list[Backend] = field(default_factory=list)
    many_parts: int = 2_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _make_filesystem(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    root = tmp_path / "data"
    harness = Harness(
        backend=FilesystemBackend(root), min_part_size=5 * 1024 * 1024, many_parts=10_000
    )

    async def relaxed_parts() -> Backend:
        relaxed = FilesystemBackend(tmp_path / "relaxed", min_part_size=1, fsync=False)
        await relaxed.start()
        harness.extra.append(relaxed)
        return relaxed

    async def restart() -> Backend:
        await harness.backend.close()
        harness.backend = FilesystemBackend(root)
        await harness.backend.start()
        return harness.backend

    def stored_files() -> list[str]:
        temp = [f"tmp/{p.name}" for p in (root / "tmp").iterdir()]
        return sorted(temp + [f"blobs/{p.name}" for p in (root / "blobs").glob("*/*")])

    def outside_root() -> list[str]:
        return sorted(
            str(p.relative_to(tmp_path))
            for p in tmp_path.rglob("*")
            if p != root
            and root not in p.parents
            and p.name != "relaxed"
            and tmp_path / "relaxed" not in p.parents
        )

    debris = (root / "tmp" / "interrupted-write", root / "blobs" / "ab" / "ab0rphan")

    def plant_debris(bucket: str) -> None:
        debris[0].write_bytes(b"partial")
        debris[1].write_bytes(b"renamed, never committed")

    harness.plant_debris = plant_debris
    harness.leftovers = lambda: [str(path) for path in debris if path.exists()]
    harness.relaxed_parts = relaxed_parts
    harness.restart = restart
    harness.stored_files = stored_files
    harness.outside_root = outside_root
    await harness.backend.start()
    return harness


async def _make_memory(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    """The in-memory translator: no restart (nothing outlives it), so no debris either."""
    backend = MemoryBackend()
    harness = Harness(backend=backend, min_part_size=5 * 1024 * 1024, many_parts=10_000)

    async def relaxed_parts() -> Backend:
        relaxed = MemoryBackend(min_part_size=1)
        await relaxed.start()
        harness.extra.append(relaxed)
        return relaxed

    harness.relaxed_parts = relaxed_parts
    harness.stored_files = backend.held_buffers
    await backend.start()
    return harness


async def _make_gcs(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    """A fresh GCS bucket per backend, so tests and xdist workers never share state."""
    from google.cloud import storage

    from translators.config import BackendSpec
    from translators.gcs.backend import GCSBackend

    emulator: Emulator = request.getfixturevalue("fake_gcs")

    def make(min_part_size: int = 5 * 1024 * 1024) -> tuple[GCSBackend, str]:
        container = f"pw-{uuid.uuid4().hex[:20]}"
        spec = BackendSpec("gcs", container, prefix="root", options={"create": "true"})
        return GCSBackend.from_spec(spec, emulator.env), container

    backend, container = make()
    harness = Harness(backend=backend, min_part_size=5 * 1024 * 1024)

    async def relaxed_parts() -> Backend:
        relaxed, _ = make()
        relaxed.multipart.min_part_size = 1
        await relaxed.start()
        harness.extra.append(relaxed)
        return relaxed

    def client() -> storage.Client:
        return storage.Client(
            project="test",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=emulator.endpoint),
        )

    def stored_files() -> list[str]:
        """Data objects: everything but bucket markers and upload states."""
        names = [blob.name for blob in client().list_blobs(container, retry=None)]
        bookkeeping = ("root/.pagewright/buckets/", "root/.pagewright/uploads/")
        return sorted(
            name
            for name in names
            if not name.startswith(bookkeeping[0])
            and not (name.startswith(bookkeeping[1]) and name.count("/") == 3)
        )

    debris = ("root/.pagewright/tmp/debris", "root/.pagewright/uploads/gone/1")

    def plant_debris(bucket: str) -> None:
        """A temporary object and a part whose upload's state is gone (a crash's leftovers)."""
        for name in debris:
            client().bucket(container).blob(name).upload_from_string(b"debris", retry=None)

    def leftovers() -> list[str]:
        names = {blob.name for blob in client().list_blobs(container, retry=None)}
        return [name for name in debris if name in names]

    harness.relaxed_parts = relaxed_parts
    harness.stored_files = stored_files
    harness.plant_debris = plant_debris
    harness.leftovers = leftovers
    await backend.start()
    return harness


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One Azurite per test module (its in-memory store slows as it fills)."""
    from tests.support.emulators import start_azurite

    with running(start_azurite, tmp_path_factory.mktemp("azurite")) as emulator:
        yield emulator


async def _make_azure(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    """A fresh container per backend, so tests and xdist workers never share state."""
    from translators.azure.backend import AzureBackend
    from translators.config import BackendSpec

    emulator: Emulator = request.getfixturevalue("azurite")

    def make(**options: str) -> AzureBackend:
        container = f"pw-{uuid.uuid4().hex[:20]}"
        spec = BackendSpec("azure", container, "root", options={"create": "true", **options})
        return AzureBackend.from_spec(spec, emulator.env)

    backend = make()
    harness = Harness(backend=backend, min_part_size=5 * 1024 * 1024)

    async def relaxed_parts() -> Backend:
        relaxed = make(min_part_size="1")
        await relaxed.start()
        harness.extra.append(relaxed)
        return relaxed

    from tests.conformance.debris import azure_debris

    harness.relaxed_parts = relaxed_parts
    harness.plant_debris, harness.leftovers = azure_debris(
        backend, emulator.env["AZURE_STORAGE_CONNECTION_STRING"]
    )
    try:
        await harness.backend.start()
    except BaseException:
        await harness.backend.close()
        raise
    return harness


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One moto_server per test session (per xdist worker)."""
    from tests.support.emulators import start_moto

    with running(start_moto, tmp_path_factory.mktemp("moto")) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def rclone_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One ``rclone serve s3 :memory:`` per test session (per xdist worker)."""
    from tests.support.emulators import start_rclone_s3

    with running(start_rclone_s3, tmp_path_factory.mktemp("rclone")) as emulator:
        yield emulator


def _s3_factory(fixture: str, mapping: str, relaxed: bool) -> Factory:
    """Fresh backend buckets per S3 backend, so tests and xdist workers never share state.
    moto runs the ``prefix`` mapping, rclone the ``bucket`` one (keys stored verbatim); only
    rclone accepts parts under 5 MiB natively, so only it gets ``relaxed_parts``."""

    async def make_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
        from tests.conformance.debris import s3_debris
        from translators.config import BackendSpec
        from translators.namespace import Mapping
        from translators.s3.backend import S3Backend

        emulator: Emulator = request.getfixturevalue(fixture)

        def make(**options: str) -> S3Backend:
            unique = uuid.uuid4().hex[:12]
            kind: Mapping = "bucket" if mapping == "bucket" else "prefix"
            spec = BackendSpec(
                "s3",
                f"pw-{unique}",
                prefix="root" if kind == "prefix" else "",
                mapping=kind,
                container_prefix=f"pw{unique[:8]}-" if kind == "bucket" else "",
                options={"create": "true", **options},
            )
            return S3Backend.from_spec(spec, emulator.env)

        backend = make()
        harness = Harness(backend=backend, min_part_size=5 * 1024 * 1024)

        async def relaxed_parts() -> Backend:
            small_parts = make(min_part_size="1")
            await small_parts.start()
            harness.extra.append(small_parts)
            return small_parts

        if relaxed:
            harness.relaxed_parts = relaxed_parts
        harness.plant_debris, harness.leftovers = s3_debris(backend)
        await harness.backend.start()
        return harness

    return make_harness


_make_s3_moto = _s3_factory("moto_s3", "prefix", relaxed=False)
_make_s3_rclone = _s3_factory("rclone_s3", "bucket", relaxed=True)


_RCLONE_PATHS = (
    "rclone serve s3 stores objects as files of a VFS, so keys that are not file paths "
    "('a' beside 'a/b', 'dir/' beside 'dir/x', 'a//b', '.', '..') cannot be stored"
)
_RCLONE_PARTS = (
    "rclone serve s3 streams parts into the final file: a part cannot be replaced and "
    "every uploaded part must be completed, in order"
)
#: (harness, test) -> why that storage server itself cannot do what the test needs. Only
#: limits of the emulated storage belong here, never gaps in a translator.
_STORAGE_LIMITS: dict[tuple[str, str], str] = {
    ("s3-moto", "test_opaque_keys_coexist"): "moto_server answers 404 for keys holding a newline",
    ("s3-rclone", "test_opaque_keys_coexist"): _RCLONE_PATHS,
    ("s3-rclone", "test_prefix_with_like_wildcards_is_literal"): _RCLONE_PATHS,
    ("s3-rclone", "test_flat_listing"): _RCLONE_PATHS,
    ("s3-rclone", "test_delimiter_roll_up"): _RCLONE_PATHS,
    ("s3-rclone", "test_paging_counts_prefixes"): _RCLONE_PATHS,
    ("s3-rclone", "test_start_after"): _RCLONE_PATHS,
    ("s3-rclone", "test_max_keys_zero"): _RCLONE_PATHS,
    ("s3-rclone", "test_exact_page_boundary_is_not_truncated"): _RCLONE_PATHS,
    ("s3-rclone", "test_reuploaded_part_replaces"): _RCLONE_PARTS,
    ("s3-rclone", "test_skipped_and_unused_parts"): _RCLONE_PARTS,
    ("s3-rclone", "test_completion_errors"): _RCLONE_PARTS,
}


Factory = Callable[[pytest.FixtureRequest, Path], Awaitable[Harness]]

#: One entry per translator under test. A remote translator's factory gets its emulator
#: from a session fixture (``request.getfixturevalue``), started once per test session.
_FACTORIES: dict[str, Factory] = {
    "azure": _make_azure,
    "filesystem": _make_filesystem,
    "gcs": _make_gcs,
    "memory": _make_memory,
    "s3-moto": _make_s3_moto,
    "s3-rclone": _make_s3_rclone,
}


#: The targets that run in this process; every other one needs an emulator (a real server).
IN_PROCESS = frozenset({"filesystem", "memory"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``server`` the conformance tests of a target that needs an emulator."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("harness") if callspec is not None else None
        if target is not None and target not in IN_PROCESS:
            item.add_marker(pytest.mark.server)


@pytest.fixture(params=sorted(_FACTORIES))
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    limit = _STORAGE_LIMITS.get((request.param, request.node.originalname))
    if limit is not None:
        pytest.skip(f"{request.param}: {limit}")
    made = await _FACTORIES[request.param](request, tmp_path)
    yield made
    for extra in made.extra:
        await extra.close()
    await made.backend.close()


@pytest.fixture
async def backend(harness: Harness) -> Backend:
    return harness.backend


@pytest.fixture
async def bucket(backend: Backend) -> str:
    name = f"conformance-{os.getpid()}-{next(_bucket_names)}"
    await backend.create_bucket(CTX, name)
    return name
