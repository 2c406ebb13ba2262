"""``pagewright-gateway sites grant|revoke|grants``: users' roles on sites.

A role (``reader``, ``deployer``, ``writer``, ``owner``; see :mod:`policy.principals`) is
granted to one user on one site, replacing the role it had there. Works on the catalog
directly (the same settings as ``serve``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from commands.identity_output import run_with_store
from commands.parser import add_command, add_commands
from commands.store import add_catalog_arguments
from core.errors import S3Error
from gateway.handlers.common import validate_bucket_name
from policy.identities import IdentityStore
from policy.principals import Role

_ROLES = [role.value for role in Role]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``sites`` subcommand's actions, each with the catalog options."""
    common = argparse.ArgumentParser(add_help=False)
    add_catalog_arguments(common)
    actions = add_commands(parser, "action")
    grant = add_command(actions, "grant", "give a user a role on a site", parents=[common])
    grant.add_argument("site", metavar="SITE", type=_site_name, help="the site (bucket)")
    grant.add_argument("user", metavar="USER", help="the user")
    grant.add_argument("role", metavar="ROLE", choices=_ROLES, help=", ".join(_ROLES))
    revoke = add_command(actions, "revoke", "take a user's role on a site away", parents=[common])
    revoke.add_argument("site", metavar="SITE", help="the site (bucket)")
    revoke.add_argument("user", metavar="USER", help="the user")
    grants = add_command(actions, "grants", "list roles granted", parents=[common])
    grants.add_argument("site", metavar="SITE", nargs="?", help="only this site's (default all)")


def _site_name(text: str) -> str:
    """An argparse type: a site name, by S3's bucket naming rules (a typo is refused rather
    than granted a role on a site that can never exist)."""
    try:
        validate_bucket_name(text)
    except S3Error as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error.message}") from None
    return text


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``sites`` from parsed arguments; the exit status (see
    :mod:`commands.identity_output`; 1 also when there was no role to revoke)."""
    return run_with_store("sites", args, environ, _act)


async def _act(store: IdentityStore, args: argparse.Namespace) -> int:
    if args.action == "grant":
        await store.grant(args.site, args.user, args.role)
    elif args.action == "revoke":
        if not await store.revoke(args.site, args.user):
            print(
                f"pagewright-gateway sites: {args.user!r} has no role on {args.site!r}",
                file=sys.stderr,
            )
            return 1
    else:
        for grant in await store.grants(site=args.site):
            print(f"{grant.site}  {grant.user_name}  {grant.role.value}")
    return 0
