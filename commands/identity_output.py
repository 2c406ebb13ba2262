"""What the identity commands (``users``, ``keys``, ``sites``) share: running against the
identity store with one exit-status convention, dates from the command line, and lines.

Exit status: 0 done; 1 the store refused (unknown user, a name taken, a user still holding
keys...), said on stderr in the store's words; 2 unusable options or settings.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from commands.store import open_catalog_settings, started_identities
from gateway.settings import SettingsError
from policy.identities import IdentityStore
from policy.identity_rules import IdentityError

Action = Callable[[IdentityStore, argparse.Namespace], Awaitable[int]]


def run_with_store(
    command: str, args: argparse.Namespace, environ: Mapping[str, str], action: Action
) -> int:
    """Open the gateway's identity store (the catalog must exist), run ``action`` on it and
    return its exit status; refusals and unusable settings are printed as one line."""
    settings = open_catalog_settings(command, args, environ, need_catalog=True)
    if settings is None:
        return 2

    async def work() -> int:
        async with started_identities(settings) as store:
            return await action(store, args)

    try:
        return asyncio.run(work())
    except SettingsError as error:
        print(f"pagewright-gateway {command}: {error}", file=sys.stderr)
        return 2
    except IdentityError as error:
        print(f"pagewright-gateway {command}: {error.message}", file=sys.stderr)
        return 1


def future_time(text: str) -> datetime:
    """An argparse type: an ISO 8601 date (midnight UTC) or time (UTC unless it has an
    offset) that is still to come."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (2027-01-31) or time (2027-01-31T18:00:00+01:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise argparse.ArgumentTypeError(f"{text!r} is already past")
    return moment


def when(moment: datetime | None, absent: str = "never") -> str:
    """A time as the commands print it (ISO 8601, UTC, seconds)."""
    if moment is None:
        return absent
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
