"""What each ``pagewright-gateway artifacts`` subcommand does: its request to the artifact
API and its output (a table, or the API's JSON with ``--json``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from commands.progress import download_bar

_LIST_COLUMNS = ("build_id", "size", "created_at", "status", "action", "creator", "pinned")
_SEARCH_COLUMNS = ("site", *_LIST_COLUMNS)


class CommandError(Exception):
    """A failed request or bad input; the message is printed, ``status`` is the exit code."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


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
                download_bar(not args.no_progress, output.name, total) as advance,
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


#: Subcommand name -> what it does; run by :func:`commands.artifacts.run`.
ACTIONS: dict[str, Callable[[httpx.Client, argparse.Namespace, Console], None]] = {
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
