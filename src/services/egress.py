"""Which addresses the server may call out to: webhooks must not reach this host or internal networks.

A webhook URL is chosen by whoever creates a run, so without this check it is a way to make
the server send requests to itself, to the cloud metadata service (169.254.169.254) or to
anything else on its private networks (server-side request forgery). The host is resolved
once, every address it resolves to is checked, and the caller connects to the address that
was checked: a name that resolves to a public address for the check and to an internal one
for the connection (DNS rebinding) gets no second lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What WEBHOOKS_ALLOW_LOOPBACK=true adds to the allow-list.
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")
# Names that mean this host without any lookup (RFC 6761 reserves *.localhost for loopback).
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# A loopback name, or this host's own name, passes the look-up-free check when the allow-list
# covers this address; where it really leads is checked when it is used.
LOOPBACK_REPRESENTATIVE = ipaddress.IPv4Address("127.0.0.1")
# The shorthand IPv4 forms inet_aton (and so getaddrinfo) accepts: 127.1, 0x7f.1, 2130706433, 0177.0.0.1.
NUMERIC_IPV4 = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)
HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# A gateway translates these IPv6 addresses to the IPv4 address in their low 32 bits (RFC 6052).
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
# Never a local address: if binding to it succeeds, the host binds to any address
# (net.ipv4.ip_nonlocal_bind) and binding cannot tell this host's own addresses apart.
NEVER_LOCAL = ipaddress.IPv4Address("192.0.2.1")
# Checked in this order, so that 127.0.0.1 is reported as loopback rather than as private.
INTERNAL_KINDS = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_site_local", "site-local"),
    ("is_private", "private"),
    ("is_reserved", "reserved"),
)
# Kinds that mean the request would reach this very host.
THIS_HOST_KINDS = frozenset({"unspecified", "loopback", "an address of this host", "the name of this host"})


class AddressRefused(Exception):
    """A host that is, or resolves to, an address the server must not call; one line, no URL."""

    def __init__(self, host: str, address: IPAddress | None, kind: str) -> None:
        self.host = host
        self.address = address
        self.kind = kind
        # What a connection would reach: 127.1 is 127.0.0.1, ::ffff:127.0.0.1 is 127.0.0.1.
        reached = None if address is None else _connected_ipv4(address) or address
        shown = "" if reached is None or host == str(reached) else f"{reached}, "
        super().__init__(f"{host} is {shown}{kind}")

    @property
    def this_host(self) -> bool:
        return self.kind in THIS_HOST_KINDS


def parse_allowed_host(entry: str) -> str | None:
    """The normal form of one allow-list entry (a CIDR network or a lower-case host name), or None if invalid."""
    text = entry.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        pass
    if NUMERIC_IPV4.fullmatch(text):
        # A shorthand like 10.1 is an address, not a name; ask for the dotted form instead of guessing.
        return None
    name = text.removesuffix(".")
    if not name or len(name) > 253 or not all(HOST_LABEL.fullmatch(label) for label in name.split(".")):
        return None
    return name


def literal_address(host: str) -> IPAddress | None:
    """The address a host given as an IP literal stands for, in every form the OS accepts; None for a name."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if NUMERIC_IPV4.fullmatch(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def internal_kind(address: IPAddress) -> str | None:
    """Why `address` is not a public Internet address (loopback, private, ...), or None if it is one."""
    judged = _connected_ipv4(address) or address
    for attribute, kind in INTERNAL_KINDS:
        if getattr(judged, attribute, False):
            return kind
    if not judged.is_global:  # e.g. 100.64.0.0/10, carrier-grade NAT space
        return "not globally routable"
    if isinstance(address, ipaddress.IPv6Address) and address.sixtofour is not None:
        # A 6to4 address is routed to the IPv4 address it embeds.
        inner = internal_kind(address.sixtofour)
        if inner is not None:
            return f"6to4 for {address.sixtofour}, {inner}"
    return None


def _connected_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address a connection to this IPv6 address really reaches (IPv4-mapped, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def can_bind(address: IPAddress) -> bool:
    """Whether a socket can bind to `address`: true exactly for this host's own addresses."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    try:  # creating the socket fails too where the family is disabled (no IPv6)
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((str(address), 0))
    except OSError:
        return False
    return True


class Resolver:
    """Host names to addresses, as the OS resolves them for a TCP connection (without blocking the loop)."""

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = [ipaddress.ip_address(info[4][0]) for info in infos]
        return list(dict.fromkeys(found))


class EgressGuard:
    """Refuses hosts on this machine or on internal networks unless an allow-list names them.

    `allowed_hosts` holds entries as `parse_allowed_host` returns them: host names (any
    address they resolve to is accepted) and networks (addresses inside are accepted).
    """

    def __init__(self, allowed_hosts: Iterable[str], resolver: Resolver) -> None:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in allowed_hosts:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry.lower().removesuffix("."))
        self._names = frozenset(names)
        self._networks = tuple(networks)
        self._resolver = resolver
        self._own_name = socket.gethostname().lower()
        # Without this, a host whose name or public address points back at itself would get past
        # the range checks; skipped where any address binds (nonlocal bind), as it would refuse all.
        self._detect_own_addresses = not can_bind(NEVER_LOCAL)

    def check_host(self, host: str) -> None:
        """Fast, no lookup: refuse an IP literal in a forbidden range and names that mean this host.

        Every other name is checked by `connect_address` when it is used, since what it
        resolves to can change in between.
        """
        name = host.lower().removesuffix(".")
        if name in self._names:
            return
        address = literal_address(name)
        if address is not None:
            self._check(name, address)
        elif name in LOOPBACK_NAMES or name.endswith(".localhost"):
            if not self._allowed(LOOPBACK_REPRESENTATIVE):
                raise AddressRefused(name, None, "loopback")
        elif name == self._own_name:
            if not self._allowed(LOOPBACK_REPRESENTATIVE):
                raise AddressRefused(name, None, "the name of this host")

    async def connect_address(self, host: str, port: int) -> IPAddress:
        """Resolve `host` once and return the address to connect to, if every address it has is allowed.

        Every address is checked, not only the first: a client may fall back to any of them.
        """
        name = host.lower().removesuffix(".")
        addresses = await self._resolver.addresses(name, port)
        if not addresses:
            raise OSError(f"{name} resolves to no address")
        if name not in self._names:
            for address in addresses:
                self._check(name, address)
        return addresses[0]

    def _allowed(self, address: IPAddress) -> bool:
        candidates = (address, _connected_ipv4(address) or address)
        return any(candidate in network for candidate in candidates for network in self._networks)

    def _check(self, host: str, address: IPAddress) -> None:
        if self._allowed(address):
            return
        kind = internal_kind(address)
        if kind is not None:
            raise AddressRefused(host, address, kind)
        if self._detect_own_addresses and can_bind(_connected_ipv4(address) or address):
            raise AddressRefused(host, address, "an address of this host")
