"""``pagewright-gateway users create|list|delete``: the gateway's IAM users.

Works on the catalog directly (the same settings as ``serve``), like the IAM API's
CreateUser, ListUsers and DeleteUser. A user is deleted only once its access keys, inline
policies and API keys are gone (``keys delete``, ``api-key revoke``); its site grants go
with it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from commands.identity_output import run_with_store, when
from commands.parser import add_command, add_commands
from commands.store import add_catalog_arguments
from policy.identities import IdentityStore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``users`` subcommand's actions, each with the catalog options."""
    common = argparse.ArgumentParser(add_help=False)
    add_catalog_arguments(common)
    actions = add_commands(parser, "action")
    create = add_command(actions, "create", "create a user", parents=[common])
    create.add_argument("name", metavar="NAME", help="1-64 of A-Z a-z 0-9 _ + = , . @ -")
    create.add_argument("--path", default="/", help="IAM path, /like/this/ (default /)")
    add_command(actions, "list", "list users", parents=[common])
    delete = add_command(
        actions, "delete", "delete a user that holds no keys or policies", parents=[common]
    )
    delete.add_argument("name", metavar="NAME", help="the user to delete")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``users`` from parsed arguments; the exit status (see
    :mod:`commands.identity_output`)."""
    return run_with_store("users", args, environ, _act)


async def _act(store: IdentityStore, args: argparse.Namespace) -> int:
    if args.action == "create":
        user = await store.create_user(args.name, args.path)
        print(f"{user.name}  {user.user_id}  {user.arn}")
    elif args.action == "list":
        marker = None
        while True:
            page = await store.list_users(marker=marker, max_items=1000)
            for user in page.items:
                print(f"{user.name}  {user.user_id}  {user.path}  created {when(user.created_at)}")
            if page.marker is None:
                break
            marker = page.marker
    else:
        await store.delete_user(args.name)
    return 0
