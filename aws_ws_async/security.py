"""Pure request checks used by the WebSocket views: no database, no settings side effects.

Each function answers one question about untrusted input (a header, a query parameter) and
never raises on malformed input: it answers "no" instead, so a view can turn every refusal into
a clean 4xx. Keeping them pure makes them cheap to property-test in isolation.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from django.http.request import split_domain_port, validate_host

from aws_ws_async.validators import is_valid_channel_name, is_valid_connection_id

__all__ = [
    "client_ip",
    "host_allowed",
    "is_valid_channel_name",
    "is_valid_connection_id",
    "origin_allowed",
    "parse_origin",
    "rate_limit_bucket",
    "secret_matches",
]

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def secret_matches(provided: str | None, secrets: Sequence[str]) -> bool:
    """Whether ``provided`` equals one of ``secrets``, in constant time per comparison.

    Every configured secret is compared (no early exit), so timing reveals neither which secret
    matched nor how many are configured. Several secrets exist to allow rotation: provision the
    new one first, deploy, then drop the old one.
    """
    if not provided or not secrets:
        return False
    try:
        provided_bytes = provided.encode("utf-8")
    except UnicodeEncodeError:
        return False
    found = False
    for secret in secrets:
        if hmac.compare_digest(provided_bytes, secret.encode("utf-8")):
            found = True
    return found


def host_allowed(host: str | None, allowed_hosts: Iterable[str]) -> bool:
    """Whether a raw ``Host`` header value is allowed, with Django's own matching rules.

    Uses :func:`django.http.request.validate_host`, so ``*`` and ``.example.com`` patterns in
    ``ALLOWED_HOSTS`` behave exactly as they do for every other Django view (the predecessor's
    exact-membership test rejected them).
    """
    if not host:
        return False
    domain, _port = split_domain_port(host)
    if not domain:
        return False
    return bool(validate_host(domain, list(allowed_hosts)))


def parse_origin(value: str | None) -> tuple[str, str, str] | None:
    """``(scheme, host, port)`` of an ``Origin`` header (default port filled in), or None.

    Only ``http``/``https`` origins with a host and nothing but a host (no path, query,
    credentials) are accepted; ``null`` and opaque origins are not.
    """
    if not value or len(value) > 2048:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    if parts.password is not None:
        return None
    return scheme, host, str(port) if port is not None else _DEFAULT_PORTS[scheme]


def _host_port(host: str, scheme: str) -> tuple[str, str] | None:
    domain, port = split_domain_port(host)
    if not domain:
        return None
    return domain, port or _DEFAULT_PORTS[scheme]


def _is_subdomain(host: str, parent: str) -> bool:
    return host.endswith("." + parent)


def origin_allowed(
    origin: str | None,
    *,
    host: str | None,
    trusted_origins: Iterable[str] = (),
    allow_subdomains: bool = False,
) -> bool:
    """Whether a browser ``Origin`` may open a WebSocket to this backend.

    Allowed are: the request's own host (same host and port, ``http`` or ``https``), and every
    entry of ``trusted_origins`` (format of Django's ``CSRF_TRUSTED_ORIGINS``: exact
    ``https://app.example.com`` or wildcard ``https://*.example.com``, scheme and port must
    match). Sub-domains of the request host are accepted only with ``allow_subdomains``: the
    predecessor accepted any sub-domain, so a page on ``evil.example.com`` (user content, a
    forgotten staging site) could open sockets with the victim's cookies.
    """
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    scheme, origin_host, origin_port = parsed
    if host:
        own = _host_port(host, scheme)
        if own is not None:
            own_host, own_port = own
            if origin_port == own_port and (
                origin_host == own_host
                or (allow_subdomains and _is_subdomain(origin_host, own_host))
            ):
                return True
    for trusted in trusted_origins:
        if _matches_trusted(scheme, origin_host, origin_port, trusted):
            return True
    return False


def _matches_trusted(scheme: str, host: str, port: str, trusted: str) -> bool:
    wildcard = "://*." in trusted
    candidate = trusted.replace("://*.", "://", 1) if wildcard else trusted
    parsed = parse_origin(candidate)
    if parsed is None:
        return False
    t_scheme, t_host, t_port = parsed
    if t_scheme != scheme or t_port != port:
        return False
    if wildcard:
        return _is_subdomain(host, t_host)
    return host == t_host


def client_ip(forwarded_for: str | None, trusted_proxy_count: int = 0) -> str | None:
    """The client IP from ``X-Forwarded-For``, or None when it cannot be trusted.

    Every hop *appends* the address it received the request from, so only the right-most
    entries were written by infrastructure we control; anything further left was supplied by
    the client and is never trusted. API Gateway appends the real peer, so with no proxies of
    our own (``trusted_proxy_count=0``) the client is the right-most entry; with ``n`` proxies
    between API Gateway and Django (ALB, nginx) it is ``n`` hops further left.

    An invalid or missing entry gives None (the caller then has no IP bucket); it never maps
    to a shared placeholder such as ``0.0.0.0``, which would let one client lock out others.
    """
    if not forwarded_for or trusted_proxy_count < 0:
        return None
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    index = len(hops) - 1 - trusted_proxy_count
    if index < 0:
        return None
    candidate = hops[index]
    if candidate.startswith("[") and "]" in candidate:  # "[::1]:443"
        candidate = candidate[1 : candidate.index("]")]
    elif candidate.count(":") == 1:  # "1.2.3.4:5678"
        candidate = candidate.split(":", 1)[0]
    if "%" in candidate:  # IPv6 zone ids are local and not storable
        return None
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def rate_limit_bucket(ip: str | None, ipv6_prefix: int = 64) -> str | None:
    """The key a client's ``$connect`` attempts are counted under.

    IPv4 stays per address. An IPv6 subscriber usually owns a whole /64 (often a /56 or /48),
    so counting per address would let one client rotate through 2**64 addresses and never be
    limited: IPv6 addresses are grouped by their ``ipv6_prefix``-bit network, and the bucket is
    that network's first address (storable in a ``GenericIPAddressField``). IPv4-mapped IPv6
    (``::ffff:203.0.113.7``) counts as the IPv4 address it is. Anything unparsable, or a prefix
    outside 1..128, gives None (no IP bucket; the per-user limit still applies) rather than a
    shared placeholder that would let one client lock out others.
    """
    if not ip or "%" in ip or isinstance(ipv6_prefix, bool) or not isinstance(ipv6_prefix, int):
        return None
    if not 1 <= ipv6_prefix <= 128:
        return None
    try:
        address = ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    network = ipaddress.IPv6Network((address, ipv6_prefix), strict=False)
    return str(network.network_address)
