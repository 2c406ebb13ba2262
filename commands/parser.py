"""argparse for people: usage errors as one line in the user's words, and a clear message
when a command that has subcommands is given none.

Every parser of ``pagewright-gateway`` is a :class:`CommandParser`; commands with subcommands
add them with :func:`add_commands`. A usage error prints
``<prog>: <what is wrong> (see '<prog> --help')`` on stderr and exits with status 2, the
usage summary itself is left to ``--help``. Argument names are shown as their metavars
(``SITE``, ``COMMAND``), never as the attribute names the code reads them into.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and name a missing subcommand's choices."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        for value in vars(parsed).values():
            if isinstance(value, MissingCommand):
                value.fail()
        return parsed, extras


class MissingCommand:
    """The value of a subcommand's attribute until a subcommand is given."""

    def __init__(
        self, parser: argparse.ArgumentParser, commands: argparse._SubParsersAction[Any]
    ) -> None:
        self.parser = parser
        self.commands = commands

    def fail(self) -> NoReturn:
        self.parser.error(f"choose a command: {', '.join(self.commands.choices)}")


def add_commands(
    parser: argparse.ArgumentParser, dest: str
) -> argparse._SubParsersAction[CommandParser]:
    """Subcommands of ``parser``, stored in ``dest``; giving none is a usage error naming
    the choices (checked once parsing is done, so ``--help`` and ``--version`` still work)."""
    commands = parser.add_subparsers(
        dest=dest,
        metavar="COMMAND",
        title="commands",
        help=f"see '{parser.prog} COMMAND --help'",
        parser_class=CommandParser,
    )
    parser.set_defaults(**{dest: MissingCommand(parser, commands)})
    return commands


def add_command(
    commands: argparse._SubParsersAction[CommandParser],
    name: str,
    help_text: str,
    **options: Any,
) -> CommandParser:
    """A subcommand whose one-line ``help_text`` (shown in its parent's ``--help``) is also
    the description at the top of its own ``--help``."""
    description = help_text[0].upper() + help_text[1:].rstrip(".") + "."
    return commands.add_parser(name, help=help_text, description=description, **options)
