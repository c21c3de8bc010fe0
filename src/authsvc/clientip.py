"""The client's address: the socket peer, or ``X-Forwarded-For`` when the peer is a proxy
we trust (``AUTHSVC_TRUSTED_PROXIES``). A client cannot pick its own address by sending
the header, because only hops added by trusted proxies are believed."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def is_trusted(value: str, networks: tuple[Network, ...]) -> bool:
    address = _address(value)
    return address is not None and any(address in net for net in networks)


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
