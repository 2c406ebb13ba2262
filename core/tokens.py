"""Random opaque tokens that command lines accept as they are.

Version ids and generated secret keys are URL-safe base64. One in 64 of those would begin
with ``-``, which argument parsers (the aws cli, argparse, getopt) take for an option:
``aws s3api get-object --version-id -abc...`` fails. These never begin with ``-``.
"""

from __future__ import annotations

import secrets


def opaque_token(nbytes: int) -> str:
    """``secrets.token_urlsafe(nbytes)`` drawn again until it does not begin with ``-``:
    uniform over the URL-safe tokens of that length that a command line takes as a value."""
    while True:
        token = secrets.token_urlsafe(nbytes)
        if not token.startswith("-"):
            return token
