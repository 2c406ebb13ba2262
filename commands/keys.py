"""``pagewright-gateway keys create|list|activate|deactivate|delete``: users' S3 access keys.

Works on the catalog directly (the same settings as ``serve``), like the IAM API's access
key actions. ``create`` prints the key id and secret once (the catalog keeps the secret
sealed under the gateway's master key). A key deactivated or deleted here stops working on
every running gateway within seconds (their credential caches last at most 5 s).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from commands.identity_output import future_time, run_with_store, when
from commands.parser import add_command, add_commands
from commands.store import add_catalog_arguments
from policy.identities import IdentityStore

_STATUS = {"activate": "Active", "deactivate": "Inactive"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``keys`` subcommand's actions, each with the catalog options."""
    common = argparse.ArgumentParser(add_help=False)
    add_catalog_arguments(common)
    actions = add_commands(parser, "action")
    create = add_command(
        actions, "create", "create an access key and print it (once)", parents=[common]
    )
    create.add_argument("user", metavar="USER", help="the user the key authenticates")
    create.add_argument(
        "--expires",
        type=future_time,
        help="when the key stops working: a date (UTC midnight) or an ISO 8601 time",
    )
    listing = add_command(actions, "list", "list a user's keys (never secrets)", parents=[common])
    listing.add_argument("user", metavar="USER", help="whose keys")
    for name, help_text in (
        ("activate", "let an inactive key authenticate again"),
        ("deactivate", "stop a key from authenticating (it can be activated again)"),
        ("delete", "delete a key for good"),
    ):
        action = add_command(actions, name, help_text, parents=[common])
        action.add_argument("user", metavar="USER", help="the key's user")
        action.add_argument("key_id", metavar="KEY_ID", help="the access key id")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``keys`` from parsed arguments; the exit status (see
    :mod:`commands.identity_output`)."""
    return run_with_store("keys", args, environ, _act)


async def _act(store: IdentityStore, args: argparse.Namespace) -> int:
    if args.action == "create":
        key = await store.create_access_key(args.user, args.expires)
        print(f"AWS_ACCESS_KEY_ID={key.access_key_id}")
        print(f"AWS_SECRET_ACCESS_KEY={key.secret_access_key}")
        if key.info.expires_at is not None:
            print(f"# expires {when(key.info.expires_at)}")
    elif args.action == "list":
        for info in await store.list_access_keys(args.user):
            print(
                f"{info.access_key_id}  {info.status}  created {when(info.created_at)}  "
                f"expires {when(info.expires_at)}  last used {when(info.last_used_at)}"
            )
    elif args.action == "delete":
        await store.delete_access_key(args.user, args.key_id)
    else:
        await store.update_access_key(args.user, args.key_id, _STATUS[args.action])
    return 0
