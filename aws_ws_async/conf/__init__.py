"""Typed settings for aws_ws_async, read from one dict in ``settings.py``.

Projects configure the app through ``settings.AWS_WS_ASYNC``. Projects migrating from
django-aws-api-gateway-websockets keep working unchanged: its ``WEBSOCKETS`` dict and its
``AWS_GATEWAY_REGION_NAME`` / ``AWS_REGION_NAME`` / ``AWS_IAM_PROFILE`` / ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` settings are still read, with ``AWS_WS_ASYNC`` taking precedence.

Each key is declared exactly once, as a field of :class:`AppSettings` (the first group, tokens,
rate limits and gateway security, in its base :class:`~.request_keys.RequestKeys`) made with
:func:`setting` (type, default, doc, legacy names, whether it guards security). ``SPECS``, the
docs table (``docs/settings_table.py``), the system checks and the run-time object all derive
from those fields, and the checks call the same :func:`validate` the run time uses.

Reading settings never raises. A bad value of an ordinary key falls back to its default. A bad
value of a *security* key never means "off": it is recorded in :attr:`AppSettings.insecure`,
the views refuse every request (503) and provisioning refuses to run until it is fixed
(``docs/security.md``); the checks report it with an id either way.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from aws_ws_async.conf.request_keys import RequestKeys
from aws_ws_async.conf.spec import GATEWAY_SECRET_RE as GATEWAY_SECRET_RE
from aws_ws_async.conf.spec import KIND_DESCRIPTIONS as KIND_DESCRIPTIONS
from aws_ws_async.conf.spec import KINDS as KINDS
from aws_ws_async.conf.spec import VALIDATORS as VALIDATORS
from aws_ws_async.conf.spec import InsecureSettings as InsecureSettings
from aws_ws_async.conf.spec import Spec, setting

logger = logging.getLogger("aws_ws_async.conf")

SETTINGS_NAME = "AWS_WS_ASYNC"
LEGACY_SETTINGS_NAME = "WEBSOCKETS"


@dataclass(frozen=True)
class AppSettings(RequestKeys):
    """The resolved settings. Attribute names are the keys of ``settings.AWS_WS_ASYNC``."""

    # --- provisioning ---
    push_changes_to_aws: bool = setting(
        True, "bool", "Push edits of synced gateway fields to AWS after commit.", legacy=True
    )
    # --- AWS credentials and endpoints ---
    region_name: str | None = setting(
        None,
        "optstr",
        "AWS region; falls back to the standard AWS chain (AWS_DEFAULT_REGION...).",
        legacy_settings=("AWS_REGION_NAME", "AWS_GATEWAY_REGION_NAME"),
    )
    profile_name: str | None = setting(
        None,
        "optstr",
        "Named AWS profile; the region above still applies.",
        legacy_settings=("AWS_IAM_PROFILE",),
    )
    access_key_id: str | None = setting(
        None,
        "optstr",
        "Explicit access key id (prefer the default credential chain).",
        legacy_settings=("AWS_ACCESS_KEY_ID",),
    )
    secret_access_key: str | None = setting(
        None, "optstr", "Explicit secret access key.", legacy_settings=("AWS_SECRET_ACCESS_KEY",)
    )
    session_token: str | None = setting(
        None, "optstr", "Explicit session token for temporary credentials."
    )
    management_endpoint_url: str | None = setting(
        None,
        "optstr",
        "Override of the @connections endpoint. May contain {api_id}, {region} and {stage}; "
        "default https://{api_id}.execute-api.{region}.amazonaws.com/{stage}.",
    )
    apigateway_endpoint_url: str | None = setting(
        None, "optstr", "Override of the apigatewayv2 endpoint (moto, LocalStack)."
    )
    route53_endpoint_url: str | None = setting(
        None, "optstr", "Override of the Route 53 endpoint (moto)."
    )
    # --- delivery engine ---
    max_concurrency: int = setting(
        100, "posint", "Posts in flight at once per broadcast (also the HTTP pool size)."
    )
    max_throttle_retries: int = setting(
        6, "nonnegint", "Retries of one post answered 429 before it counts as failed."
    )
    max_transient_retries: int = setting(
        3, "nonnegint", "Retries of one post after a 5xx, timeout or network error."
    )
    backoff_base_seconds: float = setting(
        0.05, "posfloat", "First retry delay; doubles per attempt, with full jitter."
    )
    backoff_max_seconds: float = setting(5.0, "posfloat", "Upper bound of one retry delay.")
    connect_timeout_seconds: float = setting(
        5.0, "posfloat", "TCP/TLS connect timeout of @connections calls."
    )
    read_timeout_seconds: float = setting(10.0, "posfloat", "Read timeout of @connections calls.")
    attempt_timeout_seconds: float = setting(
        15.0,
        "posfloat",
        "Total deadline of one @connections attempt (connect + send + headers + body); a peer "
        "that trickles its answer fails with reason 'timeout' after this long.",
    )
    transport: str = setting(
        "aws_ws_async.delivery.aiobotocore_transport.AiobotocoreTransport",
        "dotted",
        "Dotted path of the transport class (or factory) that posts to @connections "
        "(check E005 imports it).",
    )
    db_chunk_size: int = setting(
        2000, "posint", "Recipients read from the database per query while broadcasting."
    )
    welcome_retry_seconds: float = setting(
        3.0,
        "posfloat",
        "How long a message queued during $connect keeps retrying 410 while the socket opens.",
    )
    gone_grace_seconds: float = setting(
        5.0,
        "nonnegfloat",
        "A 410 for a session younger than this does not mark it gone (API Gateway answers 410 "
        "until $connect has returned); 0 marks every 410.",
    )
    fast_signing: bool = setting(
        True,
        "bool",
        "Sign @connections requests with the specialised SigV4 signer and send them through the "
        "aiobotocore client's own connection pool (about 5x less CPU per post). False calls "
        "client.post_to_connection / delete_connection for every request.",
    )
    async_database: bool = setting(
        False,
        "bool",
        "Run the gateway routes' compiled statements on an async psycopg pool, on the loop, "
        "with no thread hop (PostgreSQL with psycopg 3; docs/deployment.md).",
    )
    # --- enqueued broadcasts (docs/scaling.md) ---
    broadcast_shard_size: int = setting(10000, "posint", "Recipients per shard (one task).")
    broadcast_checkpoint_every: int = setting(500, "posint", "Recipients between checkpoints.")
    broadcast_lease_seconds: float = setting(60.0, "posfloat", "Shard lease without checkpoint.")
    rate_budget_per_second: float = setting(5000.0, "posfloat", "Cluster posts/s, account+Region.")
    rate_budget_redis_url: str | None = setting(None, "optstr", "Budget Redis; none: per process.")
    rate_budget_in_send: bool = setting(False, "bool", "asend_message takes budget permits too.")
    rate_budget_account: str = setting("default", "str", "Account label in the budget's key.")
    # --- channels (docs/channels.md) ---
    channel_replay_limit: int = setting(
        500,
        "posint",
        "Frames replayed at most to a connection that resubscribes with 'since'; when it missed "
        "more, it gets a 'gap' frame and the newest this many.",
    )
    #: Where each value came from ("default", "AWS_WS_ASYNC", "WEBSOCKETS", a legacy setting name).
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    #: Every bad value of the winning source, by key (or container name), as safe messages.
    problems: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def gateway_secret(self) -> str | None:
        """The secret provisioned into integrations (the first configured one)."""
        return self.gateway_secrets[0] if self.gateway_secrets else None

    @property
    def rate_limit_window_seconds(self) -> int:
        return self.rate_limit_window_minutes * 60

    @property
    def insecure(self) -> dict[str, str]:
        """Problems that must stop requests and provisioning (bad security keys, containers)."""
        return {k: v for k, v in self.problems.items() if k not in SPECS or SPECS[k].security}

    def raise_if_insecure(self) -> None:
        """Raise :class:`InsecureSettings` when a security setting is bad (provisioning)."""
        if self.insecure:
            raise InsecureSettings(self.insecure)


def _build_specs() -> dict[str, Spec]:
    specs: dict[str, Spec] = {}
    for f in dataclasses.fields(AppSettings):
        spec = f.metadata.get("spec")
        if isinstance(spec, Spec):
            key = spec.key or f.name
            specs[key] = dataclasses.replace(spec, key=key, attr=f.name)
    return specs


#: Every key of ``settings.AWS_WS_ASYNC`` with its type, default and meaning (derived).
SPECS: dict[str, Spec] = _build_specs()
#: Keys of the legacy ``WEBSOCKETS`` dict that are read, mapped to our key names.
LEGACY_KEYS: dict[str, str] = {key: key for key, spec in SPECS.items() if spec.legacy}
#: Legacy top-level Django settings and the key of ours they feed (highest precedence).
LEGACY_AWS_SETTINGS: dict[str, str] = {
    spec.legacy_settings[-1]: key for key, spec in SPECS.items() if spec.legacy_settings
}
#: Read only when ``AWS_GATEWAY_REGION_NAME`` is not set, as the predecessor did.
LEGACY_REGION_FALLBACK = SPECS["region_name"].legacy_settings[0]
#: Every Django setting name this module reads (the cache is reset when one changes).
WATCHED_SETTINGS = frozenset(
    {SETTINGS_NAME, LEGACY_SETTINGS_NAME}
    | {name for spec in SPECS.values() for name in spec.legacy_settings}
)


class RawValue(NamedTuple):
    """One configured value: where it is written (``label``), its key, value and source."""

    label: str
    key: str
    value: Any
    source: str


def containers() -> Iterator[tuple[str, Any]]:
    """``(name, value)`` of ``AWS_WS_ASYNC`` and ``WEBSOCKETS`` when set (None is unset)."""
    for name in (SETTINGS_NAME, LEGACY_SETTINGS_NAME):
        value = getattr(django_settings, name, None)
        if value is not None:
            yield name, value


def raw_values() -> Iterator[RawValue]:
    """Every configured value from every source, lowest precedence first (later ones win)."""
    for key, spec in SPECS.items():
        for name in spec.legacy_settings:
            value = getattr(django_settings, name, None)
            if value is not None:
                yield RawValue(name, key, value, name)
    for name, container in sorted(containers(), key=lambda c: c[0] == SETTINGS_NAME):
        if not isinstance(container, Mapping):
            continue
        for raw_key, value in container.items():
            if not isinstance(raw_key, str):
                continue
            if (name == SETTINGS_NAME and raw_key in SPECS) or raw_key in LEGACY_KEYS:
                yield RawValue(f"{name}[{raw_key!r}]", raw_key, value, name)


def raw_settings() -> dict[str, tuple[Any, str]]:
    """The winning raw value of each key with its source (values are *not* validated)."""
    return {raw.key: (raw.value, raw.source) for raw in raw_values()}


def validate(key: str, value: Any) -> tuple[str, str] | None:
    """``(code, message)`` when ``value`` is bad for ``key``, else None; never echoes values.

    ``code`` is ``"type"`` (wrong type or range) or ``"format"`` (the key's own rule, e.g. a
    malformed secret). The run time and the system checks both decide with this function.
    """
    spec = SPECS[key]
    kind = KINDS[spec.kind]
    if not kind.test(value):
        return "type", f"{type(value).__name__} given; expected {kind.description}"
    if spec.rule is not None and (problem := spec.rule(value)) is not None:
        return "format", problem
    return None


def is_valid(key: str, value: Any) -> bool:
    """Whether ``value`` has the right type for ``key`` (secrets also need the right format)."""
    return validate(key, value) is None


def _container_problems() -> dict[str, str]:
    """Non-dict containers and unknown keys that look like a misspelt security key."""
    problems: dict[str, str] = {}
    # Only keys whose default means "off": a misspelt gateway_secret leaves the secret check
    # off, a misspelt rate-limit key merely keeps its (safe) default and stays W002.
    guarded = [key for key, spec in SPECS.items() if spec.security and spec.default is None]
    for name, container in containers():
        if not isinstance(container, Mapping):
            problems[name] = f"{type(container).__name__} given; expected a dict"
            continue
        known = SPECS if name == SETTINGS_NAME else LEGACY_KEYS
        for raw_key in container:
            if isinstance(raw_key, str) and (raw_key in known or raw_key in SPECS):
                continue  # a new key in WEBSOCKETS is W002's business, not a typo
            close = difflib.get_close_matches(str(raw_key), guarded, n=1, cutoff=0.85)
            if close:
                problems[f"{name}[{raw_key!r}]"] = f"unknown key; did you mean {close[0]!r}?"
    return problems


def load() -> AppSettings:
    """Resolve the settings; bad values fall back to defaults and are listed in ``problems``."""
    kwargs: dict[str, Any] = {}
    sources: dict[str, str] = {}
    problems = _container_problems()
    for key, (value, source) in raw_settings().items():
        spec = SPECS[key]
        problem = validate(key, value)
        if problem is not None:
            problems[key] = f"{source}: {problem[1]}"
            continue
        kwargs[spec.attr] = spec.convert(value)
        sources[key] = source
    for key in SPECS:
        sources.setdefault(key, "default")
    return AppSettings(**kwargs, sources=sources, problems=problems)


_cached: AppSettings | None = None
_logged: set[tuple[str, str]] = set()


def get_settings() -> AppSettings:
    """The current settings, cached until a test changes Django settings."""
    global _cached
    if _cached is None:
        _cached = load()
    return _cached


def log_insecure_once(app_settings: AppSettings) -> None:
    """Log each bad security setting at ERROR, once per process (and per settings change)."""
    for key, why in app_settings.insecure.items():
        if (key, why) not in _logged:
            _logged.add((key, why))
            logger.error(
                "refusing requests: bad security setting %s (%s); fix it (see manage.py check)",
                key,
                why,
                extra={"setting": key},
            )


def reset_settings_cache() -> None:
    global _cached
    _cached = None
    _logged.clear()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in WATCHED_SETTINGS:
        reset_settings_cache()
