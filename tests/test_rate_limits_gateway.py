"""Rate limits at the gateway's surfaces, in-process over the memory store (buckets in the
process): S3 answers 503 ``SlowDown`` in its XML shape and the artifact API in its JSON
shape, both with ``Retry-After``; per-site limits come from the policy; repeated
authentication failures throttle their source address only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway.rate_limiting import limited_principal, source_of
from gateway.settings import Settings
from policy.model import SitePolicy
from policy.principals import ANONYMOUS, ROOT, Principal
from tests.support.artifact_api import API, create_api_key
from tests.support.gateway import InProcessGateway, in_process_gateway
from tests.support.raw_s3 import RawReply, send

#: A refill so slow that no token comes back during a test.
SLOW = 0.001


StartGateway = Callable[..., InProcessGateway]


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[StartGateway]:
    """Start in-process gateways with the given settings; all stop when the test ends."""
    with ExitStack() as stack:
        started = iter(range(1_000))

        def start(**settings: Any) -> InProcessGateway:
            data_dir = tmp_path / f"data{next(started)}"
            return stack.enter_context(
                in_process_gateway(data_dir, Settings(log_level="warning", **settings))
            )

        yield start


def assert_slow_down(reply: RawReply, limit: str) -> int:
    """The reply is S3's SlowDown naming ``limit``; its Retry-After in seconds."""
    assert reply.status == 503, reply.body
    assert reply.error_code() == "SlowDown"
    assert f"({limit} limit)" in str(reply.xml().findtext("Message"))
    assert reply.xml().findtext("RequestId") == reply.headers["x-amz-request-id"]
    retry_after = int(reply.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


def assert_api_slow_down(response: httpx.Response, limit: str) -> int:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "SlowDown"
    assert f"({limit} limit)" in error["message"]
    assert error["request_id"] == response.headers["x-amz-request-id"]
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


def test_s3_requests_over_the_principal_limit_slow_down(make_gateway: StartGateway) -> None:
    server = make_gateway(principal_requests_per_second=SLOW, principal_request_burst=3)
    assert send(server, "PUT", "/limited-site").status == 200
    assert send(server, "GET", "/").status == 200
    assert send(server, "GET", "/limited-site").status == 200
    retry_after = assert_slow_down(send(server, "GET", "/limited-site"), "principal requests")
    assert 900 <= retry_after <= 1000  # one token at 0.001/s
    assert_slow_down(send(server, "GET", "/"), "principal requests")
    # Probes are not limited.
    assert httpx.get(server.endpoint + "/_pagewright/healthz").status_code == 200


def test_uploads_are_charged_their_length_before_the_body_is_read(
    make_gateway: StartGateway,
) -> None:
    # A refill of 1 byte/s: however slow the machine, the second upload cannot be refilled in.
    server = make_gateway(principal_bytes_per_second=1, principal_byte_burst=1000)
    assert send(server, "PUT", "/bytes-site").status == 200
    assert send(server, "PUT", "/bytes-site/a", body=b"a" * 600).status == 200
    refused = send(server, "PUT", "/bytes-site/b", body=b"b" * 600)
    assert_slow_down(refused, "principal bytes")
    assert send(server, "GET", "/bytes-site/b").error_code() == "NoSuchKey"
    # Downloads cost no byte tokens.
    for _ in range(3):
        assert send(server, "GET", "/bytes-site/a").status == 200


def test_site_limits_come_from_the_policy_defaults_and_per_site_overrides(
    make_gateway: StartGateway,
) -> None:
    server = make_gateway(policy=SitePolicy(site_requests_per_second=SLOW, site_request_burst=4))
    for site in ("default-site", "busy-site", "open-site"):
        assert send(server, "PUT", f"/{site}").status == 200
    key = create_api_key(server)
    with httpx.Client(base_url=server.endpoint + API, headers=_bearer(key)) as api:
        for site, overrides in (
            ("busy-site", {"site_requests_per_second": SLOW, "site_request_burst": 2}),
            ("open-site", {"site_requests_per_second": None}),
        ):
            answer = api.put(f"/sites/{site}/policy", json={"overrides": overrides})
            assert answer.status_code == 200, answer.text
            assert answer.json()["effective"]["site_request_burst"] == overrides.get(
                "site_request_burst", 4
            )
        # busy-site: CreateBucket and PutPolicy took 2 of the default's 4 tokens; the
        # override's burst of 2 leaves it 2: one S3 request, one API request.
        assert send(server, "GET", "/busy-site").status == 200
        assert api.get("/sites/busy-site/usage").status_code == 200
        assert_slow_down(send(server, "GET", "/busy-site"), "site requests")
        assert_api_slow_down(api.get("/sites/busy-site/usage"), "site requests")
        # default-site: the [policy] default, 4: CreateBucket took one.
        assert [send(server, "GET", "/default-site").status for _ in range(4)] == [200] * 3 + [503]
        # open-site: no limit; the principal is not limited either.
        assert {send(server, "GET", "/open-site").status for _ in range(10)} == {200}
        assert api.get("/sites/open-site/usage").status_code == 200


def test_policy_overrides_of_rate_limits_are_validated(make_gateway: StartGateway) -> None:
    server = make_gateway()
    assert send(server, "PUT", "/checked-site").status == 200
    key = create_api_key(server)
    with httpx.Client(base_url=server.endpoint + API, headers=_bearer(key)) as api:
        for bad in (
            {"site_requests_per_second": -1},
            {"site_request_burst": 1.5},
            {"site_bytes_per_second": "fast"},
        ):
            answer = api.put("/sites/checked-site/policy", json={"overrides": bad})
            assert answer.status_code == 400
            assert answer.json()["error"]["code"] == "InvalidPolicy"


def test_api_requests_over_the_principal_limit_slow_down(make_gateway: StartGateway) -> None:
    server = make_gateway(principal_requests_per_second=SLOW, principal_request_burst=2)
    key = create_api_key(server)
    with httpx.Client(base_url=server.endpoint + API, headers=_bearer(key)) as api:
        assert api.get("/artifacts/search").status_code == 200
        assert api.get("/sites/some-site/usage").status_code == 200
        assert_api_slow_down(api.get("/artifacts/search"), "principal requests")
        # The public OpenAPI document has no principal: not limited.
        assert api.get("/openapi.json").status_code == 200
    # The S3 surface shares the principal's buckets.
    assert_slow_down(send(server, "GET", "/"), "principal requests")


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def signed_from(
    server: InProcessGateway, source: str, path: str, *, secret: str | None = None
) -> httpx.Response:
    """A SigV4-signed GET of ``path`` sent from the local address ``source``."""
    request = AWSRequest(method="GET", url=server.endpoint + path, headers={})
    credentials = Credentials(server.access_key, secret or server.secret_key)
    S3SigV4Auth(credentials, "s3", server.region).add_auth(request)
    prepared = request.prepare()
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport) as client:
        return client.get(server.endpoint + path, headers=dict(prepared.headers.items()))


def test_s3_authentication_failures_throttle_their_source_address(
    make_gateway: StartGateway,
) -> None:
    server = make_gateway(auth_failure_limit=3, auth_failure_window_seconds=600)
    wrong = replace(server, secret_key="not-the-secret")
    assert send(server, "GET", "/").status == 200
    # An anonymous request is not an authentication failure (the access decision
    # refuses it); a bad signature is.
    assert send(server, "GET", "/", sign=False).error_code() == "AccessDenied"
    codes = [send(wrong, "GET", "/").error_code() for _ in range(3)]
    assert codes == ["SignatureDoesNotMatch"] * 3
    # 127.0.0.1 has failed 3 times in its window: refused, even with the right key.
    retry_after = assert_slow_down(send(server, "GET", "/"), "authentication failures")
    assert 590 <= retry_after <= 600
    assert_slow_down(send(wrong, "GET", "/"), "authentication failures")
    # Another source address is not affected.
    assert signed_from(server, "127.0.0.2", "/").status_code == 200
    assert signed_from(server, "127.0.0.2", "/", secret="bad").status_code == 403


def test_api_authentication_failures_throttle_their_source_address(
    make_gateway: StartGateway,
) -> None:
    server = make_gateway(auth_failure_limit=2, auth_failure_window_seconds=600)
    key = create_api_key(server)
    url = server.endpoint + API + "/artifacts/search"
    assert httpx.get(url, headers=_bearer(key)).status_code == 200
    assert httpx.get(url, headers=_bearer("not-a-key")).status_code == 401
    assert httpx.get(url).status_code == 401
    assert_api_slow_down(httpx.get(url, headers=_bearer(key)), "authentication failures")
    # The S3 surface counts the same failures for the same address.
    assert_slow_down(send(server, "GET", "/"), "authentication failures")
    other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with other:
        assert other.get(url, headers=_bearer(key)).status_code == 200


def test_requests_are_charged_to_the_principal_or_an_anonymous_source() -> None:
    assert limited_principal(ROOT, "10.0.0.1") == ROOT.arn
    user = Principal("root", "user")  # a user named like root has buckets of its own
    assert limited_principal(user, "10.0.0.1") == user.arn != ROOT.arn
    assert limited_principal(ANONYMOUS, "10.0.0.1") == "anonymous@10.0.0.1"
    assert limited_principal(ANONYMOUS, "10.0.0.2") == "anonymous@10.0.0.2"


def test_the_source_address_is_the_one_policies_see() -> None:
    scope = {"client": ("10.0.0.9", 5000), "headers": [(b"x-forwarded-for", b"203.0.113.7")]}
    assert source_of(scope, ()) == "10.0.0.9"  # no trusted proxy: the header is ignored
    assert source_of(scope, ("10.0.0.0/8",)) == "203.0.113.7"
    assert source_of({"headers": []}, ()) == ""


def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled(
    make_gateway: StartGateway,
) -> None:
    server = make_gateway(
        auth_failure_limit=2, auth_failure_window_seconds=600, trusted_proxies=("127.0.0.1",)
    )
    wrong = replace(server, secret_key="not-the-secret")
    attacker = {"X-Forwarded-For": "203.0.113.1"}
    for _ in range(2):
        assert send(wrong, "GET", "/", headers=attacker).status == 403
    assert_slow_down(send(server, "GET", "/", headers=attacker), "authentication failures")
    # The proxy's other clients are not refused.
    assert send(server, "GET", "/", headers={"X-Forwarded-For": "203.0.113.2"}).status == 200
    assert send(server, "GET", "/").status == 200
