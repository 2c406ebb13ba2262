"""``pagewright-gateway``: the command line, one table of commands (:data:`COMMANDS`).

The only place a command reads the environment: each command receives it from here (the
container probe, :mod:`commands.healthcheck`, is an entry point of its own)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Final

from commands import (
    api_key,
    artifacts,
    backup,
    keys,
    migrate,
    reindex,
    serve,
    sites,
    users,
    verify,
)
from commands.parser import CommandParser, add_command, add_commands


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, its one-line help, how it adds its options, how it runs
    (parsed arguments and the environment -> exit status)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Mapping[str, str]], int]


#: Every subcommand, in the order ``--help`` lists them.
COMMANDS: Final = (
    Command("serve", "run the S3 endpoint", serve.add_arguments, serve.run),
    Command(
        "migrate",
        "copy buckets from one backend URL to another",
        migrate.add_arguments,
        migrate.run,
    ),
    Command("reindex", "rebuild the catalog from the backend", reindex.add_arguments, reindex.run),
    Command(
        "verify",
        "re-hash stored artifacts against their SHA256",
        verify.add_arguments,
        verify.run,
    ),
    Command(
        "api-key", "create, list or revoke artifact API keys", api_key.add_arguments, api_key.run
    ),
    Command(
        "artifacts",
        "the artifact API of a running gateway",
        artifacts.add_arguments,
        artifacts.run,
    ),
    Command(
        "backup",
        "save the catalog's own state to a file",
        backup.add_backup_arguments,
        backup.run_backup,
    ),
    Command(
        "restore",
        "load a catalog backup into an empty catalog",
        backup.add_restore_arguments,
        backup.run_restore,
    ),
    Command("users", "create, list or delete IAM users", users.add_arguments, users.run),
    Command(
        "keys",
        "create, list, deactivate or delete users' S3 access keys",
        keys.add_arguments,
        keys.run,
    ),
    Command("sites", "grant or revoke users' roles on sites", sites.add_arguments, sites.run),
)
_BY_NAME: Final = {command.name: command for command in COMMANDS}

DESCRIPTION = (
    "PageWright Gateway: an S3-compatible gateway for static-site build artifacts. "
    "'pagewright-gateway serve' starts it; each command's --help lists its options. "
    "Settings come from --config FILE, PWG_* environment variables and these flags."
)


def _parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="pagewright-gateway", description=DESCRIPTION)
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {metadata.version('pagewright-gateway')}",
        help="print the version and exit",
    )
    subcommands = add_commands(parser, "command")
    for command in COMMANDS:
        command.add_arguments(add_command(subcommands, command.name, command.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit status. A reader that closes stdout early (``... |
    head``) ends the command quietly with status 1 (as ``rich`` output does)."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        # Anything still buffered goes nowhere, so the interpreter's exit flush is quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1


def _run(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    return _BY_NAME[args.command].run(args, os.environ)


if __name__ == "__main__":
    sys.exit(main())
