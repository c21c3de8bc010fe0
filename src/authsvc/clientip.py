"""The client's address: the socket peer, or ``X-Forwarded-For`` when the peer is a proxy
we trust (``AUTHSVC_TRUSTED_PROXIES``). A client cannot pick its own address by sending
the header, because only hops added by trusted proxies are believed."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# One IPv6 customer usually holds a whole /64 (often more): counting per /128 would give a
# single client 2^64 fresh buckets. IPv4 addresses are counted one by one.
IPV6_LIMIT_PREFIX = 64


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from one hop: bare, bracketed, or with a port (``1.2.3.4:80``,
    ``[2001:db8::1]:443``) as some proxies write it."""
    value = value.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        value = host
    elif value.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        host, _, port = value.partition(":")
        if not port.isdigit():
            return None
        value = host
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def is_trusted(value: str, networks: tuple[Network, ...]) -> bool:
    address = _address(value)
    return address is not None and any(address in net for net in networks)


def joined(lines: Sequence[str]) -> str | None:
    """Every ``X-Forwarded-For`` header line as one list: a proxy may append its hop as a
    line of its own (RFC 9110 allows it), and reading only the first line would let the
    client's own line win."""
    return ",".join(lines) if lines else None


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str | None:
    if peer is None or not trusted or not forwarded_for or not is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    # Walk back from the nearest hop; the first one that is not our proxy is the client.
    for hop in reversed(hops):
        if _address(hop) is None:
            return peer  # a garbled chain: believe only the socket
        if not is_trusted(hop, trusted):
            return str(_address(hop))
    return str(_address(hops[0])) if hops else peer


def limit_address(ip: str | None) -> str | None:
    """The key rate limits count an address under: IPv6 addresses aggregated to their /64."""
    if not ip:
        return ip
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip  # not an address (a test client's name): counted as it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_LIMIT_PREFIX), strict=False))
    return str(address)
