"""Outages of the real storage emulators under a running gateway, and its recovery.

Each backend server is stopped and started again on the same port with the same state
(``persist=True`` in :mod:`tests.support.emulators`: ``rclone serve s3`` for S3, since
moto_server keeps its state only in memory; Azurite; fake-gcs-server), while a few boto3
clients PUT and GET through the gateway. Asserted: no 500 (the gateway answers 503
``ServiceUnavailable``/``SlowDown``); the first 503 within 1 s of the stop (the translators'
retries wait tens of milliseconds: botocore's standard mode, the Azure SDK's policy with
:class:`translators.azure.retries.ShortRetry`, :func:`translators.blocking.retrying` for
GCS); once the circuit breaker is open every request is answered 503 within 1 s; a PUT is
acknowledged again within 10 s of the backend's return; and every object acknowledged with
200 reads back byte for byte afterwards. The figures are printed (``-s`` shows them).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.clients import make_s3_client
from tests.support.emulators import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    Emulator,
    running,
    start_azurite,
    start_fake_gcs,
    start_moto,
    start_rclone_s3,
)
from tests.support.servers import GatewayServer, running_gateway

pytestmark = pytest.mark.server

CONTAINER = "outage"
CLIENTS = 3


def _s3_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }


def _azure_env(endpoint: str) -> dict[str, str]:
    return {
        "AZURE_STORAGE_CONNECTION_STRING": (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint}/{AZURITE_ACCOUNT};"
        )
    }


def _gcs_env(endpoint: str) -> dict[str, str]:
    return {"STORAGE_EMULATOR_HOST": endpoint, "GOOGLE_CLOUD_PROJECT": "test"}


def _create_s3(emulator: Emulator) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=emulator.endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=CONTAINER)
    client.close()


def _create_azure(emulator: Emulator) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(
        emulator.env["AZURE_STORAGE_CONNECTION_STRING"]
    )
    with service:
        service.create_container(CONTAINER)


def _create_gcs(emulator: Emulator) -> None:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="test",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=emulator.endpoint),
    )
    client.create_bucket(CONTAINER)
    client.close()


@dataclass(frozen=True)
class Remote:
    start: Callable[[Path], Emulator]
    create: Callable[[Emulator], None]
    env: Callable[[str], dict[str, str]]
    url: str


#: Servers that keep their state on disk, so they come back from a restart with their data.
REMOTES = {
    "s3": Remote(
        partial(start_rclone_s3, persist=True), _create_s3, _s3_env, f"s3://{CONTAINER}/gw"
    ),
    "azure": Remote(
        partial(start_azurite, persist=True), _create_azure, _azure_env, f"azure://{CONTAINER}/gw"
    ),
    "gcs": Remote(
        partial(start_fake_gcs, persist=True), _create_gcs, _gcs_env, f"gcs://{CONTAINER}/gw"
    ),
}


@contextmanager
def gateway_over(name: str, tmp_path: Path) -> Iterator[tuple[GatewayServer, Emulator]]:
    """A gateway over the ``name`` emulator, which the test may stop and restart."""
    remote = REMOTES[name]
    with running(remote.start, tmp_path) as emulator:
        remote.create(emulator)
        env = remote.env(emulator.endpoint)
        with running_gateway(tmp_path / "data", "--backend", remote.url, env=env) as server:
            yield server, emulator


@dataclass
class Outcome:
    started: float
    ended: float
    operation: str
    status: int  # 0: no HTTP answer at all
    code: str = ""


@dataclass
class Load:
    """A few clients writing and reading back through the gateway until stopped."""

    server: GatewayServer
    stop: threading.Event = field(default_factory=threading.Event)
    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)  # key -> sha256 of its body
    torn: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, worker: int) -> None:
        client = make_s3_client(
            self.server, connect_timeout=5, read_timeout=30, tcp_keepalive=False
        )
        written: list[tuple[str, str]] = []
        number = 0
        while not self.stop.is_set():
            number += 1
            key = f"w{worker}/{number}"
            body = os.urandom(4096 + number)
            if self._put(client, key, body):
                digest = hashlib.sha256(body).hexdigest()
                written.append((key, digest))
                with self.lock:
                    self.acknowledged[key] = digest
            if written:
                old_key, old_digest = written[number % len(written)]
                read = self._get(client, old_key)
                if read is not None and hashlib.sha256(read).hexdigest() != old_digest:
                    self.torn.append(old_key)
            time.sleep(0.02)
        client.close()

    def _put(self, client: Any, key: str, body: bytes) -> bool:
        return self._call("PutObject", lambda: client.put_object(Bucket="site", Key=key, Body=body))

    def _get(self, client: Any, key: str) -> bytes | None:
        got: list[bytes] = []

        def read() -> None:
            got.append(client.get_object(Bucket="site", Key=key)["Body"].read())

        return got[0] if self._call("GetObject", read) else None

    def _call(self, operation: str, call: Callable[[], object]) -> bool:
        started = time.monotonic()
        status, code = 200, ""
        try:
            call()
        except ClientError as error:
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            code = str(error.response.get("Error", {}).get("Code", ""))
        except BotoCoreError as error:
            status, code = 0, type(error).__name__
        with self.lock:
            self.outcomes.append(Outcome(started, time.monotonic(), operation, status, code))
        return status == 200

    @contextmanager
    def running(self) -> Iterator[Load]:
        threads = [threading.Thread(target=self.run, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=60)

    def first(self, after: float, accept: Callable[[Outcome], bool]) -> Outcome | None:
        with self.lock:
            found = [o for o in self.outcomes if o.ended >= after and accept(o)]
        return min(found, key=lambda o: o.ended, default=None)

    def wait_for(
        self, after: float, accept: Callable[[Outcome], bool], timeout: float
    ) -> Outcome | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (found := self.first(after, accept)) is not None:
                return found
            time.sleep(0.02)
        return None


def _refused(outcome: Outcome) -> bool:
    return outcome.status == 503


def _put_ok(outcome: Outcome) -> bool:
    return outcome.operation == "PutObject" and outcome.status == 200


def readyz(server: GatewayServer) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{server.endpoint}/_pagewright/readyz", timeout=30)
    return response.status_code, response.json()


@pytest.mark.parametrize("name", ["s3", "azure", "gcs"])
def test_a_backend_stopped_and_restarted_under_load(name: str, tmp_path: Path) -> None:
    with gateway_over(name, tmp_path) as (server, emulator):
        setup = make_s3_client(server)
        setup.create_bucket(Bucket="site")
        setup.close()
        load = Load(server)
        with load.running():
            assert load.wait_for(0, _put_ok, timeout=10) is not None
            time.sleep(0.5)
            cut = time.monotonic()
            emulator.stop()
            first_refusal = load.wait_for(cut, _refused, timeout=15)
            assert first_refusal is not None, "no 503 within 15 s of the stop"
            time_to_503 = first_refusal.ended - cut
            time.sleep(2.0)  # the circuit breaker is open by now
            status, report = readyz(server)
            assert status == 503
            assert report["checks"]["backend"]["state"] == "unavailable"
            assert report["checks"]["backend"]["breaker"] in ("open", "half_open")
            open_since = time.monotonic()
            time.sleep(1.0)
            emulator.restart()
            restored = time.monotonic()  # the backend answers again
            recovered = load.wait_for(restored, _put_ok, timeout=15)
            assert recovered is not None, "no PUT acknowledged within 15 s of the return"
            time_to_recover = recovered.ended - restored
            time.sleep(0.3)
        outcomes = list(load.outcomes)
        answered_open = [o for o in outcomes if _refused(o) and open_since <= o.started < restored]
        slowest_open = max((o.ended - o.started for o in answered_open), default=0.0)
        failures = [o for o in outcomes if o.status not in (200, 503)]
        refusals = [o for o in outcomes if o.status == 503]
        print(
            f"\n[{name}] requests {len(outcomes)}, acknowledged PUTs {len(load.acknowledged)}, "
            f"503s {len(refusals)} ({sorted({o.code for o in refusals})}), "
            f"first 503 {time_to_503:.3f} s after the stop, slowest 503 while open "
            f"{slowest_open:.3f} s, first PUT acknowledged {time_to_recover:.3f} s after "
            f"the return, other failures {len(failures)}"
        )
        assert failures == [], failures[:5]
        assert time_to_503 <= 1.0
        assert answered_open
        assert slowest_open <= 1.0
        assert time_to_recover <= 10.0
        assert load.torn == []
        assert readyz(server)[0] == 200
        # Nothing lost or torn: every acknowledged object reads back intact.
        client = make_s3_client(server)
        lost = []
        for key, digest in load.acknowledged.items():
            body = client.get_object(Bucket="site", Key=key)["Body"].read()
            if hashlib.sha256(body).hexdigest() != digest:
                lost.append(key)
        client.close()
        print(f"[{name}] acknowledged objects read back: {len(load.acknowledged)}, lost 0")
        assert lost == []
        # The retries the translator made while the backend was gone were counted.
        scrape = httpx.get(f"{server.endpoint}/_pagewright/metrics", timeout=30).text
        retries = sum(
            float(line.rsplit(" ", 1)[1])
            for line in scrape.splitlines()
            if line.startswith(f'pagewright_backend_retries_total{{backend="{name}"')
        )
        print(f"[{name}] pagewright_backend_retries_total {retries:.0f}")
        assert retries > 0


def wait_ready(server: GatewayServer, timeout: float) -> float | None:
    """Seconds until readyz answers 200 (None: not within ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if readyz(server)[0] == 200:
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def test_a_gateway_started_while_its_backend_is_down_becomes_ready_when_it_answers(
    tmp_path: Path,
) -> None:
    """moto_server, stopped before the gateway starts, then started again (it comes back
    empty, and its bucket is made again, as an operator would)."""
    remote = REMOTES["s3"]
    with running(start_moto, tmp_path) as emulator:
        emulator.stop()
        with running_gateway(
            tmp_path / "data", "--backend", remote.url, env=remote.env(emulator.endpoint)
        ) as server:
            status, report = readyz(server)
            assert status == 503
            assert report["failed"] == ["backend"]
            assert report["checks"]["backend"]["state"] == "starting"
            assert "s3" in report["checks"]["backend"]["error"]
            client = make_s3_client(server)
            with pytest.raises(ClientError) as refused:
                client.create_bucket(Bucket="site")
            assert refused.value.response["Error"]["Code"] == "ServiceUnavailable"
            assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
            emulator.restart()
            remote.create(emulator)
            restored = time.monotonic()
            ready_after = wait_ready(server, timeout=15)
            print(f"\n[start while down] ready {ready_after} s after the backend's return")
            assert ready_after is not None
            assert time.monotonic() - restored <= 10.0
            client.create_bucket(Bucket="site")
            client.put_object(Bucket="site", Key="a", Body=b"after")
            assert client.get_object(Bucket="site", Key="a")["Body"].read() == b"after"
            client.close()
