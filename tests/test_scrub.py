"""The background scrub and corrupt downloads, against a real gateway whose stored artifact
bytes are damaged on disk."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import IncompleteReadError, ResponseStreamingError

from policy.verify import Throttle
from tests.support.artifact_api import ApiClient, create_api_key, upload
from tests.support.clients import make_s3_client
from tests.support.servers import GatewayServer, running_gateway

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def scrubbing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway scrubbing every second, at up to 50 MB/s."""
    directory = tmp_path_factory.mktemp("scrubbing")
    config = directory / "gateway.toml"
    config.write_text("scrub_interval_seconds = 1\nscrub_rate_bytes = 50000000\n")
    with running_gateway(directory / "data", "--config", str(config)) as server:
        yield server


def corrupt_blob(server: GatewayServer, data: bytes) -> None:
    """Flip one byte in the middle of the blob file holding ``data``."""
    blobs = server.data_dir / "storage" / "blobs"
    (blob,) = [
        p
        for p in blobs.rglob("*")
        if p.is_file() and p.stat().st_size == len(data) and p.read_bytes() == data
    ]
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(damaged))


def site_with_artifacts(server: GatewayServer, site: str) -> tuple[Any, bytes, bytes]:
    s3 = make_s3_client(server)
    s3.create_bucket(Bucket=site)
    good = upload(s3, site, "good", padding=2000)
    bad = upload(s3, site, "bad", padding=3000)
    return s3, good, bad


def test_the_scrub_marks_a_corrupt_artifact(scrubbing: GatewayServer) -> None:
    s3, _, bad = site_with_artifacts(scrubbing, "scrubbed-site")
    corrupt_blob(scrubbing, bad)
    with ApiClient(scrubbing, create_api_key(scrubbing)) as api:
        for _ in range(600):  # the scrub runs every second; give it up to a minute
            if api.get("/sites/scrubbed-site/artifacts/bad").json()["corrupt"]:
                break
            time.sleep(0.1)
        assert api.get("/sites/scrubbed-site/artifacts/bad").json()["corrupt"] is True
        assert api.get("/sites/scrubbed-site/artifacts/good").json()["corrupt"] is False
        corrupt = api.get("/sites/scrubbed-site/artifacts", params={"sort": "build_id"}).json()
        assert [(i["build_id"], i["corrupt"]) for i in corrupt["items"]] == [
            ("good", False),
            ("bad", True),
        ]
    # A ranged read is not integrity-checked (README): it returns the stored bytes as they are.
    ranged = s3.get_object(Bucket="scrubbed-site", Key="builds/bad.tar.gz", Range="bytes=0-9")
    assert ranged["Body"].read() == bad[:10]


def test_a_corrupt_download_fails_and_leaves_an_access_line(scrubbing: GatewayServer) -> None:
    s3, good, bad = site_with_artifacts(scrubbing, "aborted-site")
    corrupt_blob(scrubbing, bad)
    assert s3.get_object(Bucket="aborted-site", Key="builds/good.tar.gz")["Body"].read() == good
    reply = s3.get_object(Bucket="aborted-site", Key="builds/bad.tar.gz")
    with pytest.raises((IncompleteReadError, ResponseStreamingError)):
        reply["Body"].read()
    request_id = reply["ResponseMetadata"]["RequestId"]
    lines: list[dict[str, Any]] = []
    for _ in range(100):
        lines = [
            json.loads(line)
            for line in scrubbing.log_path.read_text().splitlines()
            if request_id in line and line.startswith("{")
        ]
        if lines:
            break
        time.sleep(0.05)
    (line,) = lines
    assert line["logger"] == "pagewright.access"
    assert (line["operation"], line["status"], line["outcome"]) == ("GetObject", 200, "aborted")
    assert line["error"] == "CorruptArtifactError"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_throttle_holds_reads_to_its_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    throttle = Throttle(1000, clock=lambda: now[0], sleep=sleep)
    await throttle.take(1000)  # one second's worth at once
    assert slept == []
    await throttle.take(500)
    assert slept == [0.5]
    now[0] += 10  # idle time does not build up a burst beyond one second's worth
    await throttle.take(1500)
    assert slept == [0.5, 0.5]
