"""``pagewright-gateway artifacts ...``: the artifact API from the command line.

Talks to a running gateway over HTTP (``/_pagewright/v1``) with an API key. The endpoint and
key come from ``--endpoint`` / ``--api-key``, else from ``PWG_ENDPOINT`` / ``PWG_API_KEY`` in
the environment ``commands.cli`` passes down. Output is a table, or the API's JSON with
``--json``. ``download`` streams the tar to a file (``<file>.part`` renamed when complete)
with a progress bar on stderr when it is a terminal.

Exit status: 0 success, 1 the gateway refused or failed the request, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
from rich.console import Console

from commands.artifacts_actions import ACTIONS, CommandError
from commands.parser import add_command, add_commands
from core.numbers import MAX_DIGITS, is_decimal

API_PATH = "/_pagewright/v1"
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``artifacts`` subcommands, each with ``--endpoint``, ``--api-key``, ``--json``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint", help="gateway URL (default $PWG_ENDPOINT)")
    common.add_argument("--api-key", help="API key (default $PWG_API_KEY)")
    common.add_argument("--json", action="store_true", help="print the API's JSON")
    commands = add_commands(parser, "artifacts_command")

    def command(name: str, help_text: str, *, site: bool = True) -> argparse.ArgumentParser:
        sub = add_command(commands, name, help_text, parents=[common])
        if site:
            sub.add_argument("site", metavar="SITE", help="the site (its bucket name)")
        return sub

    listing = command("list", "list a site's artifacts")
    _add_listing_options(listing)
    search = command("search", "search artifacts across sites", site=False)
    search.add_argument("--site", help="only this site")
    search.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="user metadata that must match (repeatable)",
    )
    _add_listing_options(search)
    _add_build_id(command("show", "one artifact's metadata"))
    _add_build_id(command("pin", "pin an artifact (retention keeps it)"))
    _add_build_id(command("unpin", "unpin an artifact"))
    update = command("set", "set an artifact's status and/or action")
    _add_build_id(update)
    update.add_argument("--status", help="the new status, e.g. success")
    update.add_argument("--action", help="the new action, e.g. deploy")
    delete = command("delete", "delete builds (pinned ones need --force)")
    delete.add_argument("build_ids", nargs="+", metavar="BUILD_ID", help="builds to delete")
    delete.add_argument("--force", action="store_true", help="delete pinned builds too")
    download = command("download", "download builds as one tar file")
    download.add_argument("build_ids", nargs="+", metavar="BUILD_ID", help="builds to download")
    download.add_argument("-o", "--output", type=Path, help="tar file (default <site>.tar)")
    download.add_argument("--no-progress", action="store_true", help="no progress bar")
    command("usage", "a site's usage and quotas")
    retention = command("retention", "show or set a site's retention rules")
    retention.add_argument("--keep-last", type=_limit, help="keep the N newest (none: no rule)")
    retention.add_argument("--days", type=_limit, help="keep N days (none: no rule)")
    retention.add_argument(
        "--inherit", action="store_true", help="drop the site's rules: the defaults apply"
    )
    retention.add_argument(
        "--dry-run",
        action="store_true",
        help="show what a retention pass would delete now, under the given rules if any; "
        "stores nothing",
    )


def _add_build_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("build_id", metavar="BUILD_ID", help="the build (builds/BUILD_ID.tar.gz)")


def _add_listing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", help="only artifacts with this status")
    parser.add_argument("--action", help="only artifacts with this action")
    parser.add_argument("--creator", help="only artifacts uploaded by this principal")
    pinned = parser.add_mutually_exclusive_group()
    pinned.add_argument(
        "--pinned", action="store_const", const="true", dest="pinned", help="only pinned ones"
    )
    pinned.add_argument(
        "--unpinned", action="store_const", const="false", dest="pinned", help="only unpinned"
    )
    parser.add_argument("--created-from", help="ISO 8601 date or time (inclusive)")
    parser.add_argument("--created-to", help="ISO 8601 date or time (exclusive)")
    parser.add_argument(
        "--sort", choices=("created_at", "size", "build_id", "key"), help="sort by this field"
    )
    parser.add_argument("--order", choices=("asc", "desc"), help="ascending or descending")
    parser.add_argument("--limit", type=int, help="page size (1..1000)")
    parser.add_argument("--cursor", help="continue after an earlier page")
    parser.add_argument("--all", action="store_true", help="follow cursors to the last page")


def _limit(value: str) -> str:
    """A non-negative integer or ``none`` (no such rule), checked; kept as text so that
    ``none`` stays distinguishable from an absent flag."""
    if value.lower() != "none" and not (is_decimal(value) and len(value) <= MAX_DIGITS):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number or 'none'")
    return value.lower()


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``artifacts`` from parsed arguments; the exit status."""
    endpoint = args.endpoint or environ.get("PWG_ENDPOINT")
    api_key = args.api_key or environ.get("PWG_API_KEY")
    if not endpoint or not api_key:
        print(
            "pagewright-gateway artifacts: give --endpoint and --api-key "
            "(or set PWG_ENDPOINT and PWG_API_KEY)",
            file=sys.stderr,
        )
        return 2
    console = Console(width=None if sys.stdout.isatty() else 10_000)
    client = httpx.Client(
        base_url=endpoint.rstrip("/") + API_PATH,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=TIMEOUT,
    )
    try:
        with client:
            ACTIONS[args.artifacts_command](client, args, console)
    except CommandError as error:
        print(f"pagewright-gateway artifacts: {error}", file=sys.stderr)
        return error.status
    except httpx.HTTPError as error:
        print(f"pagewright-gateway artifacts: {endpoint}: {error}", file=sys.stderr)
        return 1
    return 0
