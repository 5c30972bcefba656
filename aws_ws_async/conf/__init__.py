"""Typed settings for aws_ws_async, read from one dict in ``settings.py``.

Projects configure the app through ``settings.AWS_WS_ASYNC``. Projects migrating from
django-aws-api-gateway-websockets keep working unchanged: its ``WEBSOCKETS`` dict and its
``AWS_GATEWAY_REGION_NAME`` / ``AWS_REGION_NAME`` / ``AWS_IAM_PROFILE`` / ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` settings are still read, with ``AWS_WS_ASYNC`` taking precedence.

Reading settings never raises: a value of the wrong type falls back to its default at run time,
and the system checks (``aws_ws_async.checks``) report it with an id so the mistake is visible
in ``manage.py check`` instead of crashing ``migrate`` or ``runserver``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTINGS_NAME = "AWS_WS_ASYNC"
LEGACY_SETTINGS_NAME = "WEBSOCKETS"

#: Full-match pattern every gateway secret must satisfy (at least 32 URL/base64-safe chars).
GATEWAY_SECRET_RE = re.compile(r"\A[A-Za-z0-9._~+/=-]{32,}\Z")

#: Legacy top-level Django settings and the key of ours they feed.
LEGACY_AWS_SETTINGS: dict[str, str] = {
    "AWS_GATEWAY_REGION_NAME": "region_name",
    "AWS_IAM_PROFILE": "profile_name",
    "AWS_ACCESS_KEY_ID": "access_key_id",
    "AWS_SECRET_ACCESS_KEY": "secret_access_key",
}
#: Read only when ``AWS_GATEWAY_REGION_NAME`` is not set, as the predecessor did.
LEGACY_REGION_FALLBACK = "AWS_REGION_NAME"


@dataclass(frozen=True)
class Spec:
    """How one key is typed and validated; used by :func:`load` and by the system checks."""

    default: Any
    #: One of the keys of :data:`VALIDATORS` ("posint", "bool", "strlist", ...).
    kind: str
    help: str


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (isinstance(value, int | float)) and not isinstance(value, bool)


VALIDATORS: dict[str, Callable[[Any], bool]] = {
    "posint": lambda v: _is_int(v) and v > 0,
    "nonnegint": lambda v: _is_int(v) and v >= 0,
    "posfloat": lambda v: _is_number(v) and v > 0,
    "nonnegfloat": lambda v: _is_number(v) and v >= 0,
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "optstr": lambda v: v is None or isinstance(v, str),
    "strlist": lambda v: (
        v is None
        or isinstance(v, str)
        or (isinstance(v, list | tuple) and all(isinstance(i, str) for i in v))
    ),
}

KIND_DESCRIPTIONS: dict[str, str] = {
    "posint": "a positive integer",
    "nonnegint": "an integer >= 0",
    "posfloat": "a positive number",
    "nonnegfloat": "a number >= 0",
    "bool": "True or False",
    "str": "a string",
    "optstr": "a string or None",
    "strlist": "a string, a list of strings, or None",
}

#: Every key of ``settings.AWS_WS_ASYNC`` with its type, default and meaning.
SPECS: dict[str, Spec] = {
    # --- tokens and rate limits (names kept from the predecessor) ---
    "token_rate_limit_per_minute": Spec(
        20,
        "posint",
        "One-time connect tokens a user may obtain per minute.",
    ),
    "token_expiry_seconds": Spec(60, "posint", "Lifetime of a one-time connect token."),
    "rate_limit_max_attempts": Spec(
        20,
        "posint",
        "$connect attempts allowed per client IP and per user in one window.",
    ),
    "rate_limit_window_minutes": Spec(1, "posint", "Length of the $connect rate-limit window."),
    "rate_limit_retention_days": Spec(
        7,
        "posint",
        "How long rate-limit rows are kept before cleanup deletes them.",
    ),
    "ipv6_rate_limit_prefix": Spec(
        64,
        "posint",
        "$connect rate limits group IPv6 clients by this prefix length (1-128); IPv4 stays "
        "per address.",
    ),
    "trusted_proxy_count": Spec(
        0,
        "nonnegint",
        "Proxies of your own (ALB, nginx) between API Gateway and Django that append to "
        "X-Forwarded-For. The client IP is the entry this many hops from the right.",
    ),
    # --- gateway security ---
    "gateway_secret": Spec(
        None,
        "strlist",
        "Shared secret(s) API Gateway sends in the X-Ws-Gateway-Secret header. A list allows "
        "rotation: every listed secret is accepted, the first is provisioned.",
    ),
    "gateway_secret_header": Spec(
        "X-Ws-Gateway-Secret",
        "str",
        "Header that carries the gateway secret.",
    ),
    "connection_id_header": Spec(
        "Connectionid",
        "str",
        "Header the integration maps context.connectionId into.",
    ),
    "allowed_integration_hosts": Spec(
        None,
        "strlist",
        "Hosts allowed in integration URLs; '*.example.com' allows sub-domains only.",
    ),
    "gateway_cache_seconds": Spec(
        60,
        "nonnegint",
        "How long a gateway looked up by API id is cached per process.",
    ),
    "last_seen_interval_seconds": Spec(
        60, "nonnegint", "A message updates a session's last_seen_at at most this often."
    ),
    # --- provisioning ---
    "push_changes_to_aws": Spec(
        True,
        "bool",
        "Push edits of synced gateway fields to AWS after commit.",
    ),
    # --- AWS credentials and endpoints ---
    "region_name": Spec(
        None,
        "optstr",
        "AWS region; falls back to the standard AWS chain (AWS_DEFAULT_REGION...).",
    ),
    "profile_name": Spec(None, "optstr", "Named AWS profile; the region above still applies."),
    "access_key_id": Spec(
        None,
        "optstr",
        "Explicit access key id (prefer the default credential chain).",
    ),
    "secret_access_key": Spec(None, "optstr", "Explicit secret access key."),
    "session_token": Spec(None, "optstr", "Explicit session token for temporary credentials."),
    "management_endpoint_url": Spec(
        None,
        "optstr",
        "Override of the @connections endpoint. May contain {api_id}, {region} and {stage}; "
        "default https://{api_id}.execute-api.{region}.amazonaws.com/{stage}.",
    ),
    "apigateway_endpoint_url": Spec(
        None,
        "optstr",
        "Override of the apigatewayv2 endpoint (moto, LocalStack).",
    ),
    "route53_endpoint_url": Spec(None, "optstr", "Override of the Route 53 endpoint (moto)."),
    # --- delivery engine ---
    "max_concurrency": Spec(
        100,
        "posint",
        "Posts in flight at once per broadcast (also the HTTP pool size).",
    ),
    "max_throttle_retries": Spec(
        6,
        "nonnegint",
        "Retries of one post answered 429 before it counts as failed.",
    ),
    "max_transient_retries": Spec(
        3,
        "nonnegint",
        "Retries of one post after a 5xx, timeout or network error.",
    ),
    "backoff_base_seconds": Spec(
        0.05,
        "posfloat",
        "First retry delay; doubles per attempt, with full jitter.",
    ),
    "backoff_max_seconds": Spec(5.0, "posfloat", "Upper bound of one retry delay."),
    "connect_timeout_seconds": Spec(
        5.0,
        "posfloat",
        "TCP/TLS connect timeout of @connections calls.",
    ),
    "read_timeout_seconds": Spec(10.0, "posfloat", "Read timeout of @connections calls."),
    "attempt_timeout_seconds": Spec(
        15.0,
        "posfloat",
        "Total deadline of one @connections attempt (connect + send + headers + body); a peer "
        "that trickles its answer fails with reason 'timeout' after this long.",
    ),
    "transport": Spec(
        "aws_ws_async.delivery.aiobotocore_transport.AiobotocoreTransport",
        "str",
        "Dotted path of the transport class (or factory) that posts to @connections.",
    ),
    "db_chunk_size": Spec(
        2000,
        "posint",
        "Recipients read from the database per query while broadcasting.",
    ),
    "welcome_retry_seconds": Spec(
        3.0,
        "posfloat",
        "How long a message queued during $connect keeps retrying 410 while the socket opens.",
    ),
    "fast_signing": Spec(
        True,
        "bool",
        "Sign @connections requests with the specialised SigV4 signer and send them through the "
        "aiobotocore client's own connection pool (about 5x less CPU per post). False calls "
        "client.post_to_connection / delete_connection for every request.",
    ),
}

#: Keys of the legacy ``WEBSOCKETS`` dict that are read, mapped to our key names.
LEGACY_KEYS: dict[str, str] = {
    "token_rate_limit_per_minute": "token_rate_limit_per_minute",
    "token_expiry_seconds": "token_expiry_seconds",
    "rate_limit_max_attempts": "rate_limit_max_attempts",
    "rate_limit_window_minutes": "rate_limit_window_minutes",
    "push_changes_to_aws": "push_changes_to_aws",
    "gateway_secret": "gateway_secret",
    "allowed_integration_hosts": "allowed_integration_hosts",
}


@dataclass(frozen=True)
class AppSettings:
    """The resolved settings. Attribute names are the keys of ``settings.AWS_WS_ASYNC``."""

    token_rate_limit_per_minute: int = SPECS["token_rate_limit_per_minute"].default
    token_expiry_seconds: int = SPECS["token_expiry_seconds"].default
    rate_limit_max_attempts: int = SPECS["rate_limit_max_attempts"].default
    rate_limit_window_minutes: int = SPECS["rate_limit_window_minutes"].default
    rate_limit_retention_days: int = SPECS["rate_limit_retention_days"].default
    ipv6_rate_limit_prefix: int = SPECS["ipv6_rate_limit_prefix"].default
    trusted_proxy_count: int = SPECS["trusted_proxy_count"].default
    gateway_secrets: tuple[str, ...] = ()
    gateway_secret_header: str = SPECS["gateway_secret_header"].default
    connection_id_header: str = SPECS["connection_id_header"].default
    allowed_integration_hosts: tuple[str, ...] = ()
    gateway_cache_seconds: int = SPECS["gateway_cache_seconds"].default
    last_seen_interval_seconds: int = SPECS["last_seen_interval_seconds"].default
    push_changes_to_aws: bool = SPECS["push_changes_to_aws"].default
    region_name: str | None = None
    profile_name: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    management_endpoint_url: str | None = None
    apigateway_endpoint_url: str | None = None
    route53_endpoint_url: str | None = None
    max_concurrency: int = SPECS["max_concurrency"].default
    max_throttle_retries: int = SPECS["max_throttle_retries"].default
    max_transient_retries: int = SPECS["max_transient_retries"].default
    backoff_base_seconds: float = SPECS["backoff_base_seconds"].default
    backoff_max_seconds: float = SPECS["backoff_max_seconds"].default
    connect_timeout_seconds: float = SPECS["connect_timeout_seconds"].default
    read_timeout_seconds: float = SPECS["read_timeout_seconds"].default
    attempt_timeout_seconds: float = SPECS["attempt_timeout_seconds"].default
    transport: str = SPECS["transport"].default
    db_chunk_size: int = SPECS["db_chunk_size"].default
    welcome_retry_seconds: float = SPECS["welcome_retry_seconds"].default
    fast_signing: bool = SPECS["fast_signing"].default
    #: Where each value came from ("default", "AWS_WS_ASYNC", "WEBSOCKETS", a legacy setting name).
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def gateway_secret(self) -> str | None:
        """The secret provisioned into integrations (the first configured one)."""
        return self.gateway_secrets[0] if self.gateway_secrets else None

    @property
    def rate_limit_window_seconds(self) -> int:
        return self.rate_limit_window_minutes * 60


def _as_tuple(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(value)


def raw_settings() -> dict[str, tuple[Any, str]]:
    """Collect raw values with their source, legacy names first so ours override them.

    Values are *not* validated here. Non-dict containers are ignored (the checks report them).
    """
    collected: dict[str, tuple[Any, str]] = {}
    for legacy_name, key in LEGACY_AWS_SETTINGS.items():
        value = getattr(django_settings, legacy_name, None)
        if value is not None:
            collected[key] = (value, legacy_name)
    if "region_name" not in collected:
        value = getattr(django_settings, LEGACY_REGION_FALLBACK, None)
        if value is not None:
            collected["region_name"] = (value, LEGACY_REGION_FALLBACK)
    legacy = getattr(django_settings, LEGACY_SETTINGS_NAME, None)
    if isinstance(legacy, Mapping):
        for legacy_key, key in LEGACY_KEYS.items():
            if legacy_key in legacy:
                collected[key] = (legacy[legacy_key], LEGACY_SETTINGS_NAME)
    ours = getattr(django_settings, SETTINGS_NAME, None)
    if isinstance(ours, Mapping):
        for key, value in ours.items():
            if key in SPECS:
                collected[key] = (value, SETTINGS_NAME)
    return collected


def is_valid(key: str, value: Any) -> bool:
    """Whether ``value`` has the right type for ``key`` (secrets also need the right format)."""
    spec = SPECS[key]
    if not VALIDATORS[spec.kind](value):
        return False
    if key == "gateway_secret":
        return all(GATEWAY_SECRET_RE.fullmatch(s) for s in _as_tuple(value))
    return True


def load() -> AppSettings:
    """Resolve the settings; invalid values fall back to defaults (checks report them)."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, (value, source) in raw_settings().items():
        if is_valid(key, value):
            values[key] = value
            sources[key] = source
    kwargs: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(AppSettings)}
    for key, value in values.items():
        if key == "gateway_secret":
            kwargs["gateway_secrets"] = _as_tuple(value)
        elif key == "allowed_integration_hosts":
            kwargs[key] = tuple(h.lower() for h in _as_tuple(value))
        elif key in names:
            kwargs[key] = value
    return AppSettings(**kwargs, sources=sources)


_cached: AppSettings | None = None


def get_settings() -> AppSettings:
    """The current settings, cached until a test changes Django settings."""
    global _cached
    if _cached is None:
        _cached = load()
    return _cached


def reset_settings_cache() -> None:
    global _cached
    _cached = None


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    watched = {SETTINGS_NAME, LEGACY_SETTINGS_NAME, LEGACY_REGION_FALLBACK, *LEGACY_AWS_SETTINGS}
    if setting in watched:
        reset_settings_cache()
