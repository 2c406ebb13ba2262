"""restic (repository format 2) backing up to a bucket with object lock, against a real
gateway process on the filesystem default: the repository is created, backed up twice,
checked and restored; ``forget --prune`` deletes what restic no longer needs, yet every
version it deleted stays stored under its retention and cannot be deleted by id, which is
what makes such a backup immutable."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.e2e.helpers import assert_same_tree, run, write_tree
from tests.support.clients import make_s3_client
from tests.support.s3_errors import s3_error
from tests.support.servers import GatewayServer, require_tool, running_gateway


def restic(gateway: GatewayServer, bucket: str, home: Path) -> Callable[..., str]:
    """``restic ARGS...`` on a repository in ``bucket`` of ``gateway``: its stdout."""
    executable = require_tool("restic")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "RESTIC_REPOSITORY": f"s3:{gateway.endpoint}/{bucket}",
        "RESTIC_PASSWORD": "correct horse battery staple",
        "RESTIC_CACHE_DIR": str(home / "cache"),
        "AWS_ACCESS_KEY_ID": gateway.access_key,
        "AWS_SECRET_ACCESS_KEY": gateway.secret_key,
        "AWS_DEFAULT_REGION": gateway.region,
    }

    def invoke(*args: str | Path) -> str:
        return run([executable, *args], env).stdout

    return invoke


def test_restic_over_an_object_lock_bucket(tmp_path: Path) -> None:
    bucket = f"restic-{uuid.uuid4().hex[:12]}"
    source = tmp_path / "site"
    write_tree(source)
    with running_gateway(tmp_path / "data") as gateway:
        s3 = make_s3_client(gateway)
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        s3.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
            },
        )
        locking = restic(gateway, bucket, tmp_path / "restic")
        locking("init", "--repository-version", "2")
        locking("backup", source)
        (source / "index.html").write_bytes(b"<h1>changed</h1>")
        locking("backup", source)
        snapshots = locking("snapshots", "--json")
        assert snapshots.count('"id"') >= 2
        locking("check", "--read-data")
        target = tmp_path / "restored"
        locking("restore", "latest", "--target", target)
        assert_same_tree(source, target / source.relative_to("/"))

        before = {v["Key"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]}
        locking("forget", "--keep-last", "1", "--prune")
        after = s3.list_object_versions(Bucket=bucket)
        # Whatever restic deleted is hidden by a delete marker, its data still stored...
        hidden = {m["Key"] for m in after.get("DeleteMarkers", [])}
        assert hidden
        assert before <= {v["Key"] for v in after["Versions"]}
        # ... and COMPLIANCE retention refuses deleting it by id.
        victim = next(v for v in after["Versions"] if v["Key"] in hidden)
        assert s3_error(
            lambda: s3.delete_object(
                Bucket=bucket, Key=victim["Key"], VersionId=victim["VersionId"]
            )
        )[:2] == (403, "AccessDenied")
        locking("check")
