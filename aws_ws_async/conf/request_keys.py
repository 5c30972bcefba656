"""The first group of ``AWS_WS_ASYNC`` keys: tokens, rate limits and the gateway's security.

Declared here (a base of :class:`aws_ws_async.conf.AppSettings`) only to keep
``conf/__init__.py`` under the module size cap; a dataclass lists a base's fields first, so the
order of ``SPECS`` and of the docs table is the order of the declarations, unchanged. Read the
values through :func:`aws_ws_async.conf.get_settings`, never from this class.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_ws_async.conf.spec import as_tuple, hosts, secret_rule, setting


@dataclass(frozen=True)
class RequestKeys:
    """Keys the request path reads: connect tokens, rate limits, gateway secret and headers."""

    # --- tokens and rate limits (names kept from the predecessor) ---
    token_rate_limit_per_minute: int = setting(
        20,
        "posint",
        "One-time connect tokens a user may obtain per minute.",
        legacy=True,
        security=True,
    )
    token_expiry_seconds: int = setting(
        60, "posint", "Lifetime of a one-time connect token.", legacy=True, security=True
    )
    rate_limit_max_attempts: int = setting(
        20,
        "posint",
        "$connect attempts allowed per client IP and per user in one window.",
        legacy=True,
        security=True,
    )
    rate_limit_window_minutes: int = setting(
        1, "posint", "Length of the $connect rate-limit window.", legacy=True, security=True
    )
    rate_limit_retention_days: int = setting(
        7, "posint", "How long rate-limit rows are kept before cleanup deletes them."
    )
    ipv6_rate_limit_prefix: int = setting(
        64,
        "prefixlen",
        "$connect rate limits group IPv6 clients by this prefix length (1-128); IPv4 (and "
        "IPv4-mapped IPv6) stays per address.",
        security=True,
    )
    trusted_proxy_count: int = setting(
        0,
        "nonnegint",
        "Proxies of your own (ALB, nginx) between API Gateway and Django that append to "
        "X-Forwarded-For. The client IP is the entry this many hops from the right.",
        security=True,
    )
    # --- gateway security ---
    gateway_secrets: tuple[str, ...] = setting(
        None,
        "strlist",
        "Shared secret(s) API Gateway sends in the X-Ws-Gateway-Secret header. A list allows "
        "rotation: every listed secret is accepted, the first is provisioned.",
        key="gateway_secret",
        legacy=True,
        security=True,
        rule=secret_rule,
        parse=as_tuple,
    )
    gateway_secret_header: str = setting(
        "X-Ws-Gateway-Secret", "header", "Header that carries the gateway secret.", security=True
    )
    connection_id_header: str = setting(
        "Connectionid",
        "header",
        "Header the integration maps context.connectionId into.",
        security=True,
    )
    allowed_integration_hosts: tuple[str, ...] = setting(
        None,
        "strlist",
        "Hosts allowed in integration URLs; '*.example.com' allows sub-domains only.",
        legacy=True,
        security=True,
        parse=hosts,
    )
    gateway_cache_seconds: int = setting(
        60, "nonnegint", "How long a gateway looked up by API id is cached per process."
    )
    last_seen_interval_seconds: int = setting(
        60, "nonnegint", "A message updates a session's last_seen_at at most this often."
    )
