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
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from commands.parser import add_command, add_commands
from core.numbers import MAX_DIGITS, is_decimal

API_PATH = "/_pagewright/v1"
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
_LIST_COLUMNS = ("build_id", "size", "created_at", "status", "action", "creator", "pinned")
_SEARCH_COLUMNS = ("site", *_LIST_COLUMNS)


class CommandError(Exception):
    """A failed request or bad input; the message is printed, ``status`` is the exit code."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


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
            _COMMANDS[args.artifacts_command](client, args, console)
    except CommandError as error:
        print(f"pagewright-gateway artifacts: {error}", file=sys.stderr)
        return error.status
    except httpx.HTTPError as error:
        print(f"pagewright-gateway artifacts: {endpoint}: {error}", file=sys.stderr)
        return 1
    return 0


# Requests


def _call(client: httpx.Client, method: str, path: str, **options: Any) -> Any:
    """The JSON body of a successful request; CommandError naming the API error otherwise."""
    response = client.request(method, path, **options)
    _check(response)
    return response.json()


def _check(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        error = response.json()["error"]
        detail = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        detail = response.text.strip() or response.reason_phrase
    raise CommandError(f"{response.status_code} {detail}")


def _site_path(args: argparse.Namespace, *parts: str) -> str:
    return "/".join(("/sites", args.site, *parts))


# Commands


def _list(client: httpx.Client, args: argparse.Namespace, console: Console) -> None:
    _listing(client, args, console, _site_path(args, "artifacts"), {}, _LIST_COLUMNS)


def _search(client: httpx.Client, args: argparse.Namespace, console: Console) -> None:
    params: dict[str, str] = {}
    for pair in args.meta:
        field, sep, value = pair.partition("=")
        if not sep or not field:
            raise CommandError(f"--meta {pair!r} is not FIELD=VALUE", 2)
        params[f"meta.{field}"] = value
    if args.site:
        params["site"] = args.site
    _listing(client, args, console, "/artifacts/search", params, _SEARCH_COLUMNS)


def _listing(
    client: httpx.Client,
    args: argparse.Namespace,
    console: Console,
    path: str,
    params: dict[str, str],
    columns: tuple[str, ...],
) -> None:
    for name in ("status", "action", "creator", "pinned", "created_from", "created_to"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    for name in ("sort", "order", "limit", "cursor"):
        if getattr(args, name) is not None:
            params[name] = str(getattr(args, name))
    items: list[dict[str, Any]] = []
    while True:
        page = _call(client, "GET", path, params=params)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None or not args.all:
            break
        params["cursor"] = cursor
    if args.json:
        _print_json({"items": items, "next_cursor": cursor})
        return
    table = Table(*(c.upper() for c in columns), box=box.SIMPLE)
    for item in items:
        table.add_row(*(_cell(c, item[c]) for c in columns))
    console.print(table)
    if cursor is not None:
        print(f"more: --cursor {cursor}", file=sys.stderr)


def _show(client: httpx.Client, args: argparse.Namespace, console: Console) -> None:
    _print_artifact(
        _call(client, "GET", _site_path(args, "artifacts", args.build_id)), args, console
    )


def _pin(client: httpx.Client, args: argparse.Namespace, console: Console) -> None:
    path = _site_path(args, "artifacts", args.build_id, "pin")
    _print_artifact(_call(client, "POST", path), args, console)


def _unpin(client: httpx.Client, args: argparse.Namespace, console: Console) -> None:
    path = _site_path(args, "artifacts", args.build_id, "unpin")
    _print_artifact(_call(client, "POST", path), args, console)


def _set(client: httpx.Client, args: argparse.Namespace, console: Console) -> None:
    changes = {k: v for k, v in (("status", args.status), ("action", args.action)) if v}
    if not changes:
        raise CommandError("give --status, --action or both", 2)
    path = _site_path(args, "artifacts", args.build_id)
    _print_artifact(_call(client, "PATCH", path, json=changes), args, console)


def _delete(client: httpx.Client, args: argparse.Namespace, console: Console) -> None:
    body = {"build_ids": args.build_ids, "force": args.force}
    result = _call(client, "POST", _site_path(args, "artifacts:delete"), json=body)
    if args.json:
        _print_json(result)
    else:
        table = Table("BUILD_ID", "RESULT", box=box.SIMPLE)
        for outcome in ("deleted", "not_found", "pinned"):
            for build_id in result[outcome]:
                label = "pinned (use --force)" if outcome == "pinned" else outcome
                table.add_row(build_id, label.replace("_", " "))
        for failure in result["failed"]:
            error = failure["error"]
            table.add_row(failure["build_id"], f"failed: {error['code']}: {error['message']}")
        console.print(table)
    if result["failed"] or result["not_found"] or result["pinned"]:
        raise CommandError("some builds were not deleted")


def _download(client: httpx.Client, args: argparse.Namespace, console: Console) -> None:
    output: Path = args.output or Path(f"{args.site}.tar")
    partial = output.with_name(output.name + ".part")
    body = {"build_ids": args.build_ids}
    written = 0
    try:
        path = _site_path(args, "artifacts:download")
        identity = {"Accept-Encoding": "identity"}
        with client.stream("POST", path, json=body, headers=identity) as response:
            if not response.is_success:
                response.read()
                _check(response)
            total = int(response.headers.get("content-length", 0)) or None
            with (
                _progress(not args.no_progress, output.name, total) as advance,
                partial.open("wb") as handle,
            ):
                for chunk in response.iter_raw():
                    handle.write(chunk)
                    written += len(chunk)
                    advance(len(chunk))
        if total is not None and written != total:
            raise CommandError(f"the download stopped after {written} of {total} bytes")
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    summary = {"file": str(output), "bytes": written, "build_ids": args.build_ids}
    if args.json:
        _print_json(summary)
    else:
        print(f"wrote {decimal(written)} ({len(args.build_ids)} builds) to {output}")


@contextmanager
def _progress(enabled: bool, name: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A byte progress bar on stderr (off unless stderr is a terminal); yields advance()."""
    stderr = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        disable=not enabled or not stderr.is_terminal,
    )
    task = progress.add_task(name, total=total)
    with progress:
        yield lambda size: progress.advance(task, size)


def _usage(client: httpx.Client, args: argparse.Namespace, console: Console) -> None:
    result = _call(client, "GET", _site_path(args, "usage"))
    if args.json:
        _print_json(result)
        return
    used, quota, remaining = result["usage"], result["quota"], result["remaining"]
    table = Table("", "USED", "RESERVED", "QUOTA", "REMAINING", box=box.SIMPLE)
    table.add_row(
        "bytes",
        decimal(used["bytes"]),
        decimal(used["reserved_bytes"]),
        _bytes(quota["bytes"]),
        _bytes(remaining["bytes"]),
    )
    table.add_row(
        "artifacts",
        str(used["artifacts"]),
        str(used["reserved_artifacts"]),
        _text(quota["artifacts"]),
        _text(remaining["artifacts"]),
    )
    table.add_row("objects", str(used["objects"]), "", "", "")
    console.print(table)
    print(f"max object size: {_bytes(quota['max_object_size'])}")


def _retention(client: httpx.Client, args: argparse.Namespace, console: Console) -> None:
    """Show or set the rules; with ``--dry-run`` preview them instead, storing nothing."""
    changes = {
        name: None if raw == "none" else int(raw)
        for name, raw in (("keep_last", args.keep_last), ("days", args.days))
        if raw is not None
    }
    setting = bool(changes) or args.inherit
    path = _site_path(args, "retention")
    proposed: dict[str, Any] | None = None
    if setting:
        current = {} if args.inherit else _call(client, "GET", path)["overrides"]
        proposed = {**current, **changes}
    if args.dry_run:
        body = {} if proposed is None else {"proposed": proposed}
        result = _call(client, "POST", _site_path(args, "retention:dry-run"), json=body)
    elif proposed is not None:
        result = _call(client, "PUT", path, json=proposed)
    else:
        result = _call(client, "GET", path)
    if args.json:
        _print_json(result)
        return
    rules = result["effective"]
    note = "   (proposed, not saved)" if args.dry_run and proposed is not None else ""
    print(f"keep last: {_text(rules['keep_last'])}   days: {_text(rules['days'])}{note}")
    if args.dry_run:
        table = Table("BUILD_ID", "CREATED_AT", "PLAN", box=box.SIMPLE)
        for kept in result["keep"]:
            artifact = kept["artifact"]
            reasons = ", ".join(kept["reasons"])
            table.add_row(artifact["build_id"], artifact["created_at"], f"keep ({reasons})")
        for artifact in result["delete"]:
            table.add_row(artifact["build_id"], artifact["created_at"], "delete")
        console.print(table)


# Output


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False))


def _print_artifact(artifact: dict[str, Any], args: argparse.Namespace, console: Console) -> None:
    if args.json:
        _print_json(artifact)
        return
    table = Table("FIELD", "VALUE", box=box.SIMPLE)
    for name, value in artifact.items():
        if name == "metadata":
            for field, text in sorted(value.items()):
                table.add_row(f"meta.{field}", text)
        else:
            table.add_row(name, _cell(name, value))
    console.print(table)


def _cell(name: str, value: Any) -> str:
    if name == "size" and isinstance(value, int):
        return decimal(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _text(value)


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def _bytes(value: int | None) -> str:
    return "-" if value is None else decimal(value)


_COMMANDS: dict[str, Callable[[httpx.Client, argparse.Namespace, Console], None]] = {
    "list": _list,
    "search": _search,
    "show": _show,
    "pin": _pin,
    "unpin": _unpin,
    "set": _set,
    "delete": _delete,
    "download": _download,
    "usage": _usage,
    "retention": _retention,
}
