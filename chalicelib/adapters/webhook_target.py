"""Where a webhook may point: absolute http(s), no user-info, at most 2048 characters,
and, unless the stage allows private targets, a host that resolves only to public
addresses. The same check runs at subscribe time and again at delivery, where the
connection is pinned to the addresses checked here."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(ValueError):
    """The URL is malformed or points somewhere a webhook must not go."""


class Unresolvable(UnsafeTarget):
    """The host does not resolve (now): worth trying again later at delivery."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses only."""
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in (address.ipv4_mapped, address.sixtofour):
            if embedded is not None:
                return is_public(embedded)
        if address.teredo is not None:
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_unspecified
    )


def _resolve(host: str, port: int) -> tuple[str, ...]:
    # getaddrinfo reads every spelling a client would (2130706433, 0x7f000001,
    # 0177.0.0.1, [::ffff:127.0.0.1]) into the address it would really use.
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Unresolvable(f"host {host!r} does not resolve") from error
    addresses: list[str] = []
    for info in infos:
        address = str(ipaddress.ip_address(info[4][0].split("%", 1)[0]))
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Unresolvable(f"host {host!r} does not resolve")
    return tuple(addresses)


def parse(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of an acceptable URL, or UnsafeTarget."""
    if not isinstance(url, str) or not url:
        raise UnsafeTarget("webhook_url must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"webhook_url is longer than {MAX_URL_LENGTH} characters")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise UnsafeTarget("webhook_url contains whitespace or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeTarget("webhook_url must be an absolute http or https URL")
    if "@" in parts.netloc:
        raise UnsafeTarget("webhook_url must not contain user information")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as error:
        raise UnsafeTarget("webhook_url has an invalid port") from error
    if not host:
        raise UnsafeTarget("webhook_url has no host")
    if port == 0:
        raise UnsafeTarget("webhook_url has an invalid port")
    return scheme, host, port or (443 if scheme == "https" else 80)


def check(url: str, allow_private: bool) -> Target:
    scheme, host, port = parse(url)
    addresses = _resolve(host, port)
    if not allow_private:
        refused = [a for a in addresses if not is_public(ipaddress.ip_address(a))]
        if refused:
            raise UnsafeTarget(f"webhook_url resolves to a non-public address ({refused[0]})")
    return Target(url=url, scheme=scheme, host=host, port=port, addresses=addresses)
