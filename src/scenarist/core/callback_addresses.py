"""Which addresses a scenario-end callback may reach: the policy as pure data.

A client chooses the callback URL, and the server makes the request, so without a policy
a client token could make the server POST to its own loopback services, the cloud
metadata endpoint or anything else on the internal network. By default every address
that is not public unicast is refused; an allow-list (CIDRs and exact host names) opens
it for internal receivers. Resolution and connecting live in the API layer; this module
only decides.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv6 prefixes that carry an IPv4 address in their last 32 bits (RFC 6052 NAT64). A
# gateway would forward `64:ff9b::7f00:1` to 127.0.0.1, so the embedded address decides.
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?)+$")


def refusal_reason(address: IPAddress) -> str | None:
    """Why the default policy refuses `address`, or None for a public unicast address.
    IPv6 forms that embed an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by
    the address they embed as well."""
    for candidate in (address, *embedded_ipv4(address)):
        reason = _own_refusal(candidate)
        if reason is not None:
            return reason if candidate is address else f"{reason} (embedded in {address})"
    return None


def _own_refusal(address: IPAddress) -> str | None:
    # Order matters only for the message: the most telling name first.
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local (cloud metadata lives there)", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.ipv4_mapped, address.sixtofour]
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in NAT64_PREFIX:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [a for a in found if a is not None]


@dataclass(frozen=True, slots=True)
class CallbackAddressPolicy:
    """The default refusal, minus what the allow-list opens."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> CallbackAddressPolicy:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in entries:
            parsed = parse_allow_entry(entry)
            if isinstance(parsed, str):
                hosts.add(parsed)
            else:
                networks.append(parsed)
        return cls(tuple(networks), frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        """A host name on the allow-list may resolve anywhere (its operator vouches)."""
        return normalize_host(host) in self.allowed_hosts

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` may not be called, or None when it may."""
        if any(address in network for network in self.allowed_networks):
            return None
        return refusal_reason(address)


def normalize_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


def parse_allow_entry(entry: str) -> IPNetwork | str:
    """A CIDR or single address ("10.0.0.0/8", "fd00::1"), else a host name. Raises
    ValueError naming the entry when it is neither."""
    text = entry.strip()
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    host = normalize_host(text)
    if not HOST_NAME.match(host) or host.replace(".", "").isdigit():
        raise ValueError(f"{entry!r} is neither a network (CIDR), an address nor a host name")
    return host
