"""``pagewright-gateway artifacts ...`` against a real gateway process."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from commands.cli import main
from tests.support.artifact_api import create_api_key, tar_members, upload
from tests.support.gateway import InProcessGateway


@pytest.fixture(scope="module")
def api_key(gateway: InProcessGateway) -> str:
    return create_api_key(gateway)


@pytest.fixture
def built(s3: Any, bucket: str) -> dict[str, bytes]:
    return {
        "101": upload(s3, bucket, "101", status="success", creator="alice", team="web"),
        "102": upload(s3, bucket, "102", padding=500, status="failed", creator="bob"),
        "103": upload(s3, bucket, "103", padding=900, status="success", creator="alice"),
    }


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


RunCli = Callable[..., Done]


@pytest.fixture
def cli(
    gateway: InProcessGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> RunCli:
    """Run ``pagewright-gateway artifacts ...`` in-process (``commands.cli.main``), with the
    endpoint and key in the environment (PWG_ENDPOINT / PWG_API_KEY)."""

    def run(api_key: str | None, *args: str, cwd: Path | None = None) -> Done:
        with monkeypatch.context() as patch:
            patch.setenv("PWG_ENDPOINT", gateway.endpoint)
            if api_key is None:
                patch.delenv("PWG_API_KEY", raising=False)
            else:
                patch.setenv("PWG_API_KEY", api_key)
            if cwd is not None:
                patch.chdir(cwd)
            capsys.readouterr()
            status = main(["artifacts", *args])
            out, err = capsys.readouterr()
        return Done(status, out, err)

    return run


def ok(done: Done) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_list_as_table_and_json(
    cli: RunCli, api_key: str, bucket: str, built: dict[str, bytes]
) -> None:
    table = ok(cli(api_key, "list", bucket))
    lines = table.splitlines()
    assert "BUILD_ID" in lines[1]
    assert "STATUS" in lines[1]
    rows = [line.split() for line in lines[2:] if line.strip() and not set(line) <= {"─", " "}]
    assert [row[0] for row in rows] == ["103", "102", "101"]
    listed = json.loads(ok(cli(api_key, "list", bucket, "--json", "--status", "success")))
    assert [i["build_id"] for i in listed["items"]] == ["103", "101"]
    assert listed["items"][1]["size"] == len(built["101"])


def test_list_all_follows_cursors(
    cli: RunCli, api_key: str, bucket: str, built: dict[str, bytes]
) -> None:
    one_page = cli(
        api_key,
        "list",
        bucket,
        "--json",
        "--limit",
        "2",
        "--sort",
        "build_id",
        "--order",
        "asc",
    )
    page = json.loads(ok(one_page))
    assert [i["build_id"] for i in page["items"]] == ["101", "102"]
    assert page["next_cursor"]
    every = json.loads(ok(cli(api_key, "list", bucket, "--json", "--limit", "2", "--all")))
    assert sorted(i["build_id"] for i in every["items"]) == sorted(built)


def test_show_pin_unpin_and_set(
    cli: RunCli, api_key: str, bucket: str, built: dict[str, bytes]
) -> None:
    shown = ok(cli(api_key, "show", bucket, "102"))
    assert "failed" in shown
    assert "builds/102.tar.gz" in shown
    assert json.loads(ok(cli(api_key, "pin", bucket, "102", "--json")))["pinned"]
    assert json.loads(ok(cli(api_key, "show", bucket, "102", "--json")))["pinned"]
    pinned = json.loads(ok(cli(api_key, "list", bucket, "--pinned", "--json")))
    assert [i["build_id"] for i in pinned["items"]] == ["102"]
    ok(cli(api_key, "unpin", bucket, "102"))
    changed = json.loads(ok(cli(api_key, "set", bucket, "102", "--status", "ok", "--json")))
    assert (changed["status"], changed["pinned"]) == ("ok", False)


def test_download_writes_a_tar_of_the_selected_builds(
    cli: RunCli, api_key: str, bucket: str, built: dict[str, bytes], tmp_path: Path
) -> None:
    target = tmp_path / "out.tar"
    out = ok(cli(api_key, "download", bucket, "103", "101", "-o", str(target)))
    assert str(target) in out
    members = tar_members(target.read_bytes())
    assert members == {"builds/103.tar.gz": built["103"], "builds/101.tar.gz": built["101"]}
    assert list(tmp_path.iterdir()) == [target]


def test_download_of_a_missing_build_fails_and_leaves_no_file(
    cli: RunCli, api_key: str, bucket: str, built: dict[str, bytes], tmp_path: Path
) -> None:
    done = cli(api_key, "download", bucket, "101", "999", cwd=tmp_path)
    assert done.returncode == 1
    assert "NoSuchArtifact" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_delete_respects_pins_unless_forced(
    cli: RunCli, api_key: str, s3: Any, bucket: str, built: dict[str, bytes]
) -> None:
    ok(cli(api_key, "pin", bucket, "101"))
    refused = cli(api_key, "delete", bucket, "101", "102")
    assert refused.returncode == 1
    assert "pinned" in refused.stdout
    assert "deleted" in refused.stdout
    forced = json.loads(ok(cli(api_key, "delete", bucket, "101", "--force", "--json")))
    assert forced["deleted"] == ["101"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert keys == {"builds/103.tar.gz"}


def test_usage_and_retention(
    cli: RunCli, api_key: str, bucket: str, built: dict[str, bytes]
) -> None:
    usage = json.loads(ok(cli(api_key, "usage", bucket, "--json")))
    assert usage["usage"]["bytes"] == sum(len(b) for b in built.values())
    assert "artifacts" in ok(cli(api_key, "usage", bucket))
    shown = ok(cli(api_key, "retention", bucket))
    assert "keep last: -" in shown
    set_rules = json.loads(ok(cli(api_key, "retention", bucket, "--keep-last", "1", "--json")))
    assert set_rules["effective"] == {"keep_last": 1, "days": None}
    plan = ok(cli(api_key, "retention", bucket, "--dry-run"))
    assert "delete" in plan
    assert "keep" in plan
    dry = json.loads(ok(cli(api_key, "retention", bucket, "--dry-run", "--json")))
    # 103 is the newest, and the newest successful one; 102 failed; 101 is older.
    assert {a["build_id"] for a in dry["delete"]} == {"102", "101"}
    assert {k["artifact"]["build_id"] for k in dry["keep"]} == {"103"}
    assert len(json.loads(ok(cli(api_key, "list", bucket, "--json")))["items"]) == 3
    rules = json.loads(ok(cli(api_key, "retention", bucket, "--keep-last", "none", "--json")))
    assert rules["overrides"] == {"keep_last": None}
    inherited = json.loads(ok(cli(api_key, "retention", bucket, "--inherit", "--json")))
    assert inherited["overrides"] == {}


def test_a_dry_run_with_rules_previews_them_and_stores_nothing(
    cli: RunCli, api_key: str, s3: Any, bucket: str, built: dict[str, bytes]
) -> None:
    before = json.loads(ok(cli(api_key, "retention", bucket, "--json")))
    plan = json.loads(
        ok(cli(api_key, "retention", bucket, "--keep-last", "1", "--dry-run", "--json"))
    )
    assert plan["proposed"] is True
    assert plan["effective"] == {"keep_last": 1, "days": None}
    assert {a["build_id"] for a in plan["delete"]} == {"102", "101"}
    shown = ok(cli(api_key, "retention", bucket, "--keep-last", "3", "--dry-run"))
    assert "keep last: 3" in shown
    assert "proposed, not saved" in shown
    # The next upload runs retention under the site's own rules: nothing is deleted.
    upload(s3, bucket, "104", status="success")
    listed = json.loads(ok(cli(api_key, "list", bucket, "--json")))
    assert sorted(i["build_id"] for i in listed["items"]) == ["101", "102", "103", "104"]
    assert json.loads(ok(cli(api_key, "retention", bucket, "--json"))) == before


def test_search_by_metadata(
    cli: RunCli, api_key: str, bucket: str, built: dict[str, bytes]
) -> None:
    found = json.loads(ok(cli(api_key, "search", "--site", bucket, "--meta", "team=web", "--json")))
    assert [(i["site"], i["build_id"]) for i in found["items"]] == [(bucket, "101")]


def test_flags_and_errors(cli: RunCli, api_key: str, bucket: str) -> None:
    missing = cli(None, "list", bucket)
    assert missing.returncode == 2
    assert "PWG_API_KEY" in missing.stderr
    flagged = cli(None, "list", bucket, "--api-key", api_key, "--json")
    assert json.loads(ok(flagged)) == {"items": [], "next_cursor": None}
    wrong = cli("pwg_bad_key", "list", bucket)
    assert wrong.returncode == 1
    assert "401 Unauthorized" in wrong.stderr
