"""Which webhook URLs may be sent to: https (http only if allowed), public addresses only.

A target is refused when its host resolves to a loopback, link-local,
private, multicast, reserved or unspecified address, unless that address is
in ``LUME_EVENTS__ALLOW_PRIVATE_TARGETS``. The check runs when a webhook is
added and again before every POST (DNS can change), and the POST goes to the
address that was checked (no second lookup), with redirects never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import NamedTuple, Optional
from urllib.parse import urlsplit

from lume_services.errors import UnsafeTargetError
from lume_services.events.settings import EventsSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL = 2048


class Target(NamedTuple):
    """A checked URL: its parts and the address it resolved to (what the POST connects to)."""

    scheme: str
    host: str
    port: int
    path: str  # path and query
    address: IPAddress


def parse_url(url: object) -> tuple[str, str, int, str]:
    """(scheme, host, port, path?query) of a well-formed http(s) URL; raises UnsafeTargetError."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeTargetError(str(url), "expected an https:// URL")
    if len(url) > MAX_URL or any(not ch.isprintable() or ch.isspace() for ch in url):
        raise UnsafeTargetError(url, f"expected a URL of at most {MAX_URL} printable characters, no spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTargetError(url, f"it is not a valid URL ({exc})") from None
    if parts.scheme not in ("https", "http"):
        raise UnsafeTargetError(url, "expected an https:// URL")
    if not parts.hostname:
        raise UnsafeTargetError(url, "it has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTargetError(url, "credentials in the URL are not accepted (the body is signed instead)")
    if parts.fragment:
        raise UnsafeTargetError(url, "a URL fragment (#...) is never sent; leave it out")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def _forbidden(address: IPAddress) -> Optional[str]:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:
        return "non-global"
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to (an IP literal: itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[IPAddress, None] = {}
    for info in infos:
        seen[ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])] = None
    return list(seen)


def check_target(url: object, settings: EventsSettings, *, consequence: str = "Nothing was stored.") -> Target:
    """Check a webhook URL now: scheme, shape, and every address its host resolves to."""
    scheme, host, port, path = parse_url(url)
    assert isinstance(url, str)
    if scheme == "http" and not settings.allow_http:
        raise UnsafeTargetError(
            url, "plain http is refused; use https (or set LUME_EVENTS__ALLOW_HTTP=true on a trusted network)",
            consequence,
        )  # fmt: skip
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise UnsafeTargetError(url, f"its host {host!r} does not resolve ({exc})", consequence) from None
    if not addresses:
        raise UnsafeTargetError(url, f"its host {host!r} resolves to no address", consequence)
    allowed = settings.private_networks()
    for address in addresses:
        kind = _forbidden(address)
        if kind is not None and not any(address in network for network in allowed):
            raise UnsafeTargetError(
                url,
                f"its host {host!r} resolves to {kind} address {str(address)!r}, which webhooks may not "
                "reach (server-side request forgery); add its network to LUME_EVENTS__ALLOW_PRIVATE_TARGETS "
                "to allow it",
                consequence,
            )
    return Target(scheme, host, port, path, addresses[0])
