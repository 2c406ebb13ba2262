"""Bounded resources for every request, authenticated or not, against a real gateway: the
header section's size and pace, aws-chunked trailer floods, and slow request bodies, whose
temp files and quota reservations are released."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.support.artifact_api import API, create_api_key
from tests.support.clients import make_s3_client
from tests.support.servers import GatewayServer, running_gateway
from tests.support.signing import Signer
from tests.support.waiting import files_under, wait_until

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server

MIB = 1024 * 1024
#: A safety net so a test against a server that never answers fails instead of hanging.
NO_ANSWER = 60.0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after the answer

    @property
    def code(self) -> str:
        return str(etree.fromstring(self.body).findtext("Code"))


def exchange(server: GatewayServer, head: bytes, body: Iterable[bytes] = ()) -> Answer | None:
    """Send ``head`` then ``body`` from a thread while reading the answer; None when the
    connection closed before any answer. The sender stops quietly once the server hangs up."""
    connection = socket.create_connection(("127.0.0.1", server.port))
    connection.settimeout(NO_ANSWER)

    def sender() -> None:
        try:
            connection.sendall(head)
            for piece in body:
                connection.sendall(piece)
        except OSError:
            pass

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    try:
        return read_answer(connection)
    finally:
        connection.close()
        thread.join()


def read_answer(connection: socket.socket) -> Answer | None:
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            data = connection.recv(65536)
            if not data:
                return None
            received += data
    except ConnectionResetError:
        return None
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {n.strip().lower(): v.strip() for n, _, v in (h.partition(":") for h in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        data = connection.recv(65536)
        assert data, "the answer was cut short"
        body += data
    try:
        closed = connection.recv(1) == b""
    except ConnectionResetError:
        closed = True
    return Answer(int(status_line.split()[1]), headers, body[:length], closed)


def peak_rss(server: GatewayServer) -> int:
    """The server process's peak resident set size (VmHWM), in bytes."""
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def repeated(piece: bytes, total: int) -> Iterator[bytes]:
    for _ in range(total // len(piece)):
        yield piece


def signed_head(
    server: GatewayServer,
    method: str,
    path: str,
    payload_hash: str,
    extra: dict[str, str],
    length: int | None,
) -> bytes:
    headers, *_ = Signer(server).sign(method, path, payload_hash, extra, datetime.now(UTC))
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway of its own, so that its peak memory is this module's alone."""
    with running_gateway(tmp_path_factory.mktemp("limits") / "data") as running:
        yield running


@pytest.fixture
def healthy(server: GatewayServer) -> Callable[[], bool]:
    return lambda: httpx.get(f"{server.endpoint}/_pagewright/healthz").status_code == 200


# --- the request header section ---


@pytest.mark.parametrize(
    "flood",
    [
        pytest.param(lambda: repeated(b"a" * 65536, 64 * MIB), id="one-huge-header"),
        pytest.param(
            lambda: repeated(b"x-small: header\r\n" * 4096, 64 * MIB), id="many-small-headers"
        ),
    ],
)
def test_header_flood_is_refused_in_bounded_memory(
    server: GatewayServer, healthy: Callable[[], bool], flood: Callable[[], Iterator[bytes]]
) -> None:
    before = peak_rss(server)
    head = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nx-huge: ".encode()
    answer = exchange(server, head, flood())
    assert answer is not None
    assert (answer.status, answer.code) == (400, "RequestHeaderSectionTooLarge")
    assert answer.headers["x-amz-request-id"]
    assert answer.closed
    # 64 MiB were offered; the server held no more than a few reads of them.
    assert peak_rss(server) - before < 16 * MIB
    assert healthy()


def test_header_section_limit_is_16_kib_by_default(server: GatewayServer) -> None:
    s3 = make_s3_client(server)
    s3.create_bucket(Bucket="header-limit")
    path = "/header-limit"
    for padding, expected in ((12 * 1024, 200), (17 * 1024, 400)):
        head = signed_head(server, "GET", path, hashlib.sha256(b"").hexdigest(), {}, None)
        head = head[:-2] + b"x-padding: " + b"p" * padding + b"\r\n\r\n"
        answer = exchange(server, head)
        assert answer is not None
        assert answer.status == expected, answer.body
        if expected == 400:
            assert answer.code == "RequestHeaderSectionTooLarge"
            assert etree.fromstring(answer.body).findtext("MaxSizeAllowed") == "16384"


def test_configured_header_section_limit(tmp_path: Path) -> None:
    env = {"PWG_MAX_HEADER_BYTES": "65536"}
    with running_gateway(tmp_path / "data", env=env) as server:
        s3 = make_s3_client(server)
        s3.create_bucket(Bucket="wider")
        head = signed_head(server, "GET", "/wider", hashlib.sha256(b"").hexdigest(), {}, None)
        answer = exchange(server, head[:-2] + b"x-padding: " + b"p" * 40000 + b"\r\n\r\n")
        assert answer is not None
        assert answer.status == 200


# --- aws-chunked trailers ---


def test_trailer_flood_is_refused_in_bounded_memory(
    server: GatewayServer, healthy: Callable[[], bool]
) -> None:
    s3 = make_s3_client(server)
    s3.create_bucket(Bucket="trailer-flood")
    flood = 64 * MIB
    extra = {
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "3",
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    prefix = b"3\r\nabc\r\n0\r\n"
    head = signed_head(
        server,
        "PUT",
        "/trailer-flood/key",
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        extra,
        len(prefix) + flood + 2,
    )

    def body() -> Iterator[bytes]:
        yield prefix
        for n in range(flood // 65536):
            yield b"".join(b"x-amz-meta-%08d-%03d:v\r\n" % (n, i) for i in range(2048))[:65536]
        yield b"\r\n"

    before = peak_rss(server)
    answer = exchange(server, head, body())
    assert answer is not None
    assert (answer.status, answer.code) == (400, "MalformedTrailerError")
    assert answer.closed
    assert peak_rss(server) - before < 16 * MIB
    assert "Contents" not in s3.list_objects_v2(Bucket="trailer-flood")
    assert healthy()


# --- timeouts ---


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway with 1-second header and body timeouts and a 12 MiB quota per site."""
    directory = tmp_path_factory.mktemp("impatient")
    config = directory / "gateway.toml"
    config.write_text(f"header_timeout_seconds = 1\n[policy]\nquota_bytes = {12 * MIB}\n")
    env = {"PWG_BODY_TIMEOUT_SECONDS": "1"}
    with running_gateway(directory / "data", "--config", str(config), env=env) as running:
        yield running


def test_slow_header_section_is_cut_off(impatient: GatewayServer) -> None:
    connection = socket.create_connection(("127.0.0.1", impatient.port))
    connection.settimeout(NO_ANSWER)
    with connection:
        connection.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{impatient.port}\r\n".encode())
        answer = read_answer(connection)
    assert answer is not None
    assert (answer.status, answer.code) == (400, "RequestTimeout")
    assert answer.closed


def test_idle_connection_is_closed(impatient: GatewayServer) -> None:
    connection = socket.create_connection(("127.0.0.1", impatient.port))
    connection.settimeout(NO_ANSWER)
    with connection:
        assert connection.recv(1) == b""


def test_slow_body_is_cut_off_and_releases_its_reservation(impatient: GatewayServer) -> None:
    s3 = make_s3_client(impatient)
    s3.create_bucket(Bucket="slow-body")
    size = 8 * MIB
    head = signed_head(impatient, "PUT", "/slow-body/stalled", "UNSIGNED-PAYLOAD", {}, size)
    connection = socket.create_connection(("127.0.0.1", impatient.port))
    connection.settimeout(NO_ANSWER)
    with connection:
        connection.sendall(head + b"x" * MIB)  # then nothing more
        answer = read_answer(connection)
    assert answer is not None
    assert (answer.status, answer.code) == (400, "RequestTimeout")
    assert answer.closed
    tmp = impatient.data_dir / "storage" / "tmp"
    assert wait_until(lambda: not files_under(tmp))
    # 8 MiB more fit the 12 MiB quota only if the stalled upload's 8 MiB are released.
    s3.put_object(Bucket="slow-body", Key="fits", Body=b"y" * size)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="slow-body")["Contents"]] == ["fits"]


def test_slow_api_body_is_cut_off(impatient: GatewayServer) -> None:
    make_s3_client(impatient).create_bucket(Bucket="slow-api")
    key = create_api_key(impatient)
    document = json.dumps({"keep_last": 3}).encode()
    head = (
        f"PUT {API}/sites/slow-api/retention HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{impatient.port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(document)}\r\n\r\n"
    ).encode()
    connection = socket.create_connection(("127.0.0.1", impatient.port))
    connection.settimeout(NO_ANSWER)
    with connection:
        connection.sendall(head + document[:5])
        answer = read_answer(connection)
    assert answer is not None
    assert answer.status == 400
    assert json.loads(answer.body)["error"]["code"] == "RequestTimeout"
    assert answer.closed


def test_prompt_clients_are_unaffected(impatient: GatewayServer) -> None:
    s3 = make_s3_client(impatient)
    s3.create_bucket(Bucket="prompt")
    s3.put_object(Bucket="prompt", Key="k", Body=b"z" * MIB)
    assert s3.get_object(Bucket="prompt", Key="k")["Body"].read() == b"z" * MIB
