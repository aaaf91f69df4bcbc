"""Which addresses a fetch may connect to, and resolving names to them.

Every host is resolved here (``socket.getaddrinfo`` unless a resolver is
injected), *all* its addresses are checked, and the caller then connects to a
checked address: a public name that resolves to a private address is refused,
and a second, different DNS answer (rebinding) is never consulted.

Refused unless allowed: unspecified, loopback, link-local (169.254.0.0/16,
cloud metadata, fe80::/10), multicast, private (10/8, 172.16/12, 192.168/16,
fc00::/7, ...), reserved, and anything else not globally routable
(100.64.0.0/10, documentation ranges, ...). IPv6 forms that embed an IPv4
address (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``,
6to4 ``2002::/16``, Teredo, NAT64 ``64:ff9b::/96``) are judged by the IPv4
address inside.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jobs.fetch.errors import FetchFailed, FetchRefused

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolver(host, port) -> addresses as text``; the default calls getaddrinfo.
Resolver = Callable[[str, int], Sequence[str]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")


@dataclass(frozen=True)
class AllowList:
    """Parsed ``FetchLimits.allow``: networks and host-name patterns."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: tuple[str, ...] = ()  # lower case; "*.x" matches any subdomain of x

    def allows_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for pattern in self.hosts:
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return True
            if host == pattern:
                return True
        return False

    def allows_ip(self, ip: IPAddress) -> bool:
        return any(ip in net for net in self.networks if net.version == ip.version)


def parse_allow(entries: Sequence[str]) -> AllowList:
    """Split allow-list entries into networks and host names.

    >>> parse_allow(["127.0.0.1/32", "*.internal"]).hosts
    ('*.internal',)
    """
    networks: list[IPNetwork] = []
    hosts: list[str] = []
    for entry in entries:
        text = entry.strip()
        if not text:
            raise ValueError("empty entry")
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
            continue
        except ValueError:
            pass
        name = text.lower().rstrip(".")
        label = name.removeprefix("*.")
        if not label or any(not part or not all(c.isalnum() or c == "-" for c in part)
                            for part in label.split(".")):
            raise ValueError(f"{entry!r} is neither a CIDR nor a host name")
        hosts.append(name)
    return AllowList(tuple(networks), tuple(hosts))


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address, or None if it is one.

    >>> refusal_reason(ipaddress.ip_address("169.254.169.254"))
    'link-local (cloud metadata service range)'
    >>> refusal_reason(ipaddress.ip_address("::ffff:10.0.0.1"))
    'private (IPv4-mapped 10.0.0.1)'
    """
    if isinstance(ip, ipaddress.IPv6Address):
        embedded, how = _embedded_v4(ip)
        if embedded is not None:
            inner = refusal_reason(embedded)
            return f"{inner} ({how} {embedded})" if inner else None
        if ip in _V4_COMPATIBLE and not ip.is_unspecified and not ip.is_loopback:
            return "reserved (deprecated IPv4-compatible IPv6)"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (cloud metadata service range)" if ip.version == 4 else "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:  # before private: Python counts 240.0.0.0/4 as both
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not globally routable"
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip.teredo is not None:
        return ip.teredo[1], "Teredo client"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    return None, ""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, via the system resolver (no duplicates)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if addr not in seen:
            seen.append(addr)
    return seen


def checked_addresses(host: str, port: int, allow: AllowList, url: str,
                      resolver: Resolver | None = None) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses if every one may be contacted.

    Raises ``FetchRefused`` naming the first refused address and why, or when
    the name does not exist; ``FetchFailed`` when the resolver is temporarily
    unable to answer.
    """
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            texts = (resolver or system_resolver)(host, port)
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_AGAIN:
                raise FetchFailed(f"cannot fetch {url}: DNS lookup of {host!r} failed for now ({exc})", url) from exc
            raise FetchRefused(f"cannot fetch {url}: host {host!r} does not resolve ({exc})", url) from exc
        except OSError as exc:
            raise FetchFailed(f"cannot fetch {url}: DNS lookup of {host!r} failed ({exc})", url) from exc
        addresses = [ipaddress.ip_address(t) for t in texts]
        if not addresses:
            raise FetchRefused(f"cannot fetch {url}: host {host!r} has no addresses", url)
    if allow.allows_host(host):
        return addresses
    for ip in addresses:
        reason = refusal_reason(ip)
        if reason is not None and not allow.allows_ip(ip):
            via = "" if literal is not None else f"{host} resolves to "
            log.warning("fetch refused: %s%s is %s", via, ip, reason, extra={"url": url})
            raise FetchRefused(
                f"refused to fetch {url}: {via}{ip}, which is not a public address ({reason}); "
                "add it to [fetch] allow to permit it", url)
    return addresses


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
