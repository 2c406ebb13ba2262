"""The client address a request's policies see (``aws:SourceIp``).

Behind a reverse proxy the peer is the proxy; the client is in ``X-Forwarded-For``, which
anyone can also send. So the header is believed only as far as trusted proxies wrote it: read
from the right, every address that is a trusted proxy is skipped, and the first that is not is
the client. With no trusted proxies the peer is the client and the header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def trusted_networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    """``proxies`` (addresses or CIDRs, validated by the settings) as networks."""
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def source_address(peer: str | None, forwarded_for: str | None, proxies: tuple[str, ...]) -> str:
    """The client address of a request from ``peer`` carrying ``forwarded_for``
    (``X-Forwarded-For``, comma-joined when repeated). ``""`` when nothing is known."""
    client = peer or ""
    networks = trusted_networks(proxies)
    if not networks or not forwarded_for or not _trusted(client, networks):
        return client
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    while hops:
        hop = hops.pop()
        if not _trusted(hop, networks):
            return hop
        client = hop
    return client
