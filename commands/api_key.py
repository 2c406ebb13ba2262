"""``pagewright-gateway api-key create|list|revoke``: manage artifact API keys.

Works on the catalog database directly (the same settings as ``serve``: ``--config``,
``PWG_*``, flags), so it needs no running gateway, but it needs the gateway's catalog: one
that does not exist yet is an error, never a new catalog the gateway would not read.
``create`` prints the new key once; only its SHA-256 is stored. Keys belong to the
principals of the S3 credentials (``root`` today).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping

from commands.parser import add_command, add_commands
from commands.store import add_catalog_arguments, open_catalog_settings, started_catalog
from gateway.settings import Settings
from policy.catalog_api_keys import ApiKeyInfo
from policy.credentials import ROOT_PRINCIPAL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``api-key`` subcommand's actions, each with the catalog options."""
    common = argparse.ArgumentParser(add_help=False)
    add_catalog_arguments(common)
    actions = add_commands(parser, "action")
    create = add_command(actions, "create", "create a key and print it (once)", parents=[common])
    create.add_argument("--principal", default=ROOT_PRINCIPAL, help="owner (default root)")
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
        if args.action == "create":
            print(await catalog.create_api_key(args.principal))
            return 0
        if args.action == "list":
            for key in await catalog.list_api_keys(args.principal):
                print(_describe(key))
            return 0
        if await catalog.revoke_api_key(args.key_id):
            return 0
        print(f"pagewright-gateway api-key: no key {args.key_id!r}", file=sys.stderr)
        return 1


def _describe(key: ApiKeyInfo) -> str:
    used = key.last_used_at.isoformat() if key.last_used_at else "never"
    return f"{key.id}  {key.principal}  created {key.created_at.isoformat()}  last used {used}"
