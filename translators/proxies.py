"""The HTTP proxy a translator's SDK should use for its one endpoint, decided once.

HTTP clients that "trust the environment" (aiohttp's ``trust_env``, requests' default)
look up the proxy variables and read ``~/.netrc`` again for every request; aiohttp does the
``.netrc`` read in a worker thread, one thread hop per backend request. A translator talks
to one endpoint for its whole life, so it turns that off and asks :func:`proxies_for` once,
at start: the same answer the standard variables give for that endpoint (``HTTP_PROXY``,
``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, lower case first, as :mod:`urllib.request`
reads them). ``.netrc`` credentials are never used: every backend authenticates with its
own scheme (keys, SAS, tokens), never with basic auth from a file.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Mapping
from typing import cast
from urllib.parse import urlsplit

#: The standard library's ``NO_PROXY`` matcher (not in the type stubs).
_bypass = cast(
    Callable[[str, Mapping[str, str]], bool],
    getattr(urllib.request, "proxy_bypass_environment"),  # noqa: B009
)


def environment_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """``{scheme: proxy URL}`` from ``environ``'s ``*_PROXY`` variables (the lower-case
    spelling wins over the upper-case one), ``no`` holding ``NO_PROXY``."""
    found: dict[str, str] = {}
    for lower_first in (False, True):  # upper case first, then lower case overrides
        for name, value in environ.items():
            if not value or (name == name.lower()) != lower_first:
                continue
            folded = name.lower()
            if folded.endswith("_proxy"):
                found[folded[: -len("_proxy")]] = value
    return found


def proxies_for(url: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The ``{scheme: proxy URL}`` to use for requests to ``url``'s host: empty when no
    proxy is configured or ``NO_PROXY`` names the host; else the ``http``/``https``
    entries (``ALL_PROXY`` standing in for a missing one)."""
    proxies = environment_proxies(environ)
    host = urlsplit(url).hostname or ""
    if not host or _bypass(host, proxies):
        return {}
    fallback = proxies.get("all")
    return {
        scheme: proxy
        for scheme in ("http", "https")
        if (proxy := proxies.get(scheme) or fallback) is not None
    }
