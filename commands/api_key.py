"""``pagewright-gateway api-key create|list|revoke``: manage artifact API keys.

Works on the catalog database directly (the same settings as ``serve``: ``--config``,
``PWG_*``, flags), so it needs no running gateway, but it needs the gateway's catalog: one
that does not exist yet is an error, never a new catalog the gateway would not read.
``create`` prints the new key once; only its SHA-256 is stored. Keys belong to the
principals of the S3 credentials: ``root`` or an IAM user (``users create``); a key may be
given an expiry (``--expires``), after which it authenticates no one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping

from commands.identity_output import future_time
from commands.parser import add_command, add_commands
from commands.store import add_catalog_arguments, open_catalog_settings, started_catalog
from gateway.settings import Settings
from policy.api_keys import ApiKeyStore
from policy.catalog_api_keys import ApiKeyInfo
from policy.credentials import ROOT_PRINCIPAL
from policy.identities import find_user


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``api-key`` subcommand's actions, each with the catalog options."""
    common = argparse.ArgumentParser(add_help=False)
    add_catalog_arguments(common)
    actions = add_commands(parser, "action")
    create = add_command(actions, "create", "create a key and print it (once)", parents=[common])
    create.add_argument(
        "owner",
        metavar="PRINCIPAL",
        nargs="?",
        help="owner: root or an IAM user (default root; same as --principal)",
    )
    create.add_argument("--principal", help="owner: root or an IAM user (default root)")
    create.add_argument(
        "--expires",
        type=future_time,
        help="when the key stops working: a date (UTC midnight) or an ISO 8601 time",
    )
    listing = add_command(actions, "list", "list keys (ids, never secrets)", parents=[common])
    listing.add_argument("--principal", help="only this principal's keys")
    revoke = add_command(actions, "revoke", "delete a key by id", parents=[common])
    revoke.add_argument("key_id", metavar="KEY_ID", help="the id 'api-key list' shows")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``api-key`` from parsed arguments; the exit status (1: no such key to revoke)."""
    settings = open_catalog_settings("api-key", args, environ, need_catalog=True)
    if settings is None:
        return 2
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with started_catalog(settings) as catalog:
        keys = ApiKeyStore(catalog)
        if args.action == "create":
            if args.owner and args.principal and args.owner != args.principal:
                print(
                    "pagewright-gateway api-key: PRINCIPAL and --principal disagree",
                    file=sys.stderr,
                )
                return 2
            owner = args.owner or args.principal or ROOT_PRINCIPAL
            if owner != ROOT_PRINCIPAL and await find_user(catalog, owner) is None:
                print(f"pagewright-gateway api-key: no user {owner!r}", file=sys.stderr)
                return 1
            print(await keys.create_api_key(owner, args.expires))
            return 0
        if args.action == "list":
            for key in await keys.list_api_keys(args.principal):
                print(_describe(key))
            return 0
        if await keys.revoke_api_key(args.key_id):
            return 0
        print(f"pagewright-gateway api-key: no key {args.key_id!r}", file=sys.stderr)
        return 1


def _describe(key: ApiKeyInfo) -> str:
    used = key.last_used_at.isoformat() if key.last_used_at else "never"
    line = f"{key.id}  {key.principal}  created {key.created_at.isoformat()}  last used {used}"
    return line if key.expires_at is None else f"{line}  expires {key.expires_at.isoformat()}"
