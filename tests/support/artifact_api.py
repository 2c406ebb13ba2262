"""Helpers for the artifact API tests: API keys, artifact uploads, and an httpx client that
checks every exchange against ``openapi.json``."""

from __future__ import annotations

import gzip
import io
import json
import re
import subprocess
import sys
import tarfile
import uuid
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from gateway.api.openapi import OPENAPI
from tests.support.archives import Member, make_tar, site
from tests.support.gateway import GatewayEndpoint

API = "/_pagewright/v1"


def create_api_key(server: GatewayEndpoint, principal: str = "root") -> str:
    """A new API key, made with ``pagewright-gateway api-key create`` on the server's data;
    a principal other than root is made an IAM user first (keys belong to known principals)."""
    if principal != "root":
        users = [sys.executable, "-m", "commands.cli", "users", "create", principal]
        made = subprocess.run(
            [*users, "--data-dir", str(server.data_dir)],
            env=server.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert made.returncode == 0 or "already exists" in made.stderr, made.stderr
    command = [sys.executable, "-m", "commands.cli", "api-key", "create"]
    done = subprocess.run(
        [*command, "--data-dir", str(server.data_dir), "--principal", principal],
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def artifact_bytes(label: str, padding: int = 0, *, compress: bool = True) -> bytes:
    """A valid site tar (gzip'd unless not ``compress``), unique to ``label``; ``padding``
    makes sizes differ."""
    filler = (uuid.uuid5(uuid.NAMESPACE_URL, label).hex * (padding // 32 + 1))[:padding]
    archive = make_tar(site([Member("build.txt", f"{label}\n{filler}".encode())]))
    return gzip.compress(archive, mtime=0) if compress else archive


def upload(
    s3: Any, bucket: str, build_id: str, *, padding: int = 0, ext: str = "tar.gz", **meta: str
) -> bytes:
    data = artifact_bytes(f"{bucket}/{build_id}", padding, compress=ext != "tar")
    s3.put_object(Bucket=bucket, Key=f"builds/{build_id}.{ext}", Body=data, Metadata=meta)
    return data


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


_TEMPLATES = [(_template_pattern(t), t) for t in OPENAPI["paths"]]


def operation_for(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The documented (template, operation) of a request path relative to the API root."""
    matches = [t for pattern, t in _TEMPLATES if pattern.fullmatch(path)]
    assert len(matches) == 1, f"{path} matches {matches} in openapi.json"
    operation = OPENAPI["paths"][matches[0]].get(method.lower())
    assert operation is not None, f"{method} {matches[0]} is not documented"
    return matches[0], operation


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Validate against a schema of the document (its $refs resolve within it)."""
    rooted = {**schema, "components": OPENAPI["components"]}
    Draft202012Validator(rooted, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
        instance
    )


def _resolve(value: dict[str, Any]) -> dict[str, Any]:
    ref = value.get("$ref")
    if ref is None:
        return value
    node: Any = OPENAPI
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return dict(node)


def check_exchange(response: httpx.Response) -> None:
    """The response's status is documented for its operation and its body matches the
    documented schema; a successful request's JSON body matched the request schema."""
    request = response.request
    path = request.url.path
    assert path.startswith(API), path
    template, operation = operation_for(request.method, path[len(API) :])
    status = str(response.status_code)
    assert status in operation["responses"], (
        f"{request.method} {template} answered {status}, not documented: {response.text}"
    )
    spec = _resolve(operation["responses"][status])
    if "content" not in spec:
        assert response.content == b"", f"{status} must have no body"
        return
    media = response.headers["content-type"].partition(";")[0]
    assert media in spec["content"], f"{media} is not documented for {template} {status}"
    if media == "application/json":
        validate(response.json(), spec["content"][media]["schema"])
    body = operation.get("requestBody")
    if response.is_success and body is not None:
        if not request.content:
            assert body.get("required") is False, f"{template} needs a request body"
            return
        validate(json.loads(request.content), body["content"]["application/json"]["schema"])


class ApiClient(httpx.Client):
    """An httpx client on the gateway's API root whose every response is contract-checked."""

    def __init__(
        self, server: GatewayEndpoint, api_key: str | None, headers: dict[str, str] | None = None
    ) -> None:
        auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__(
            base_url=server.endpoint + API,
            headers={**auth, **(headers or {})},
            event_hooks={"response": [self._check]},
            timeout=30,
        )

    @staticmethod
    def _check(response: httpx.Response) -> None:
        response.read()
        check_exchange(response)


def tar_members(data: bytes) -> dict[str, bytes]:
    """Name -> bytes of every regular member of a tar, in archive order."""
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for info in archive:
            handle = archive.extractfile(info)
            assert handle is not None
            members[info.name] = handle.read()
    return members
