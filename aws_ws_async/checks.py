"""System checks (``manage.py check``) for aws_ws_async settings, middleware and routed views.

Every check inspects raw values with ``isinstance`` before using them, so a setting of the wrong
type (``AWS_WS_ASYNC = "oops"``, ``WEBSOCKETS = 5``, a list where a dict belongs) is *reported*
with an id and never crashes ``check``, ``migrate`` or ``runserver`` (a defect of the
predecessor). Secrets are never echoed in messages.

Ids (documented in ``docs/checks.md``):

* ``E001`` invalid gateway secret format, ``E002`` value of the wrong type, ``E003`` settings
  container is not a dict, ``E004`` session or authentication middleware missing;
* ``W002`` unknown key, ``W006`` a key set both in ``AWS_WS_ASYNC`` and a legacy setting,
  ``I001`` legacy setting names in use;
* deploy-only (``check --deploy``): ``W001`` no gateway secret, ``W003`` no AWS region,
  ``W004`` a routed ``WebSocketView`` allows unlisted channels, ``W005`` a routed
  ``WebSocketView`` exposes handler methods without an explicit ``ALLOWED_HANDLERS``.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Warning, register
from django.utils.module_loading import import_string

from aws_ws_async import conf

TAG = "aws_ws_async"

SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


def _describe(value: object) -> str:
    """A short, safe description of a value for a message (type and a truncated repr)."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _label(source: str, key: str | None = None) -> str:
    return source if key is None else f"{source}[{key!r}]"


def _containers() -> Iterator[tuple[str, Mapping[Any, Any]]]:
    """The settings dicts that are set and really are mappings, ours first."""
    for name in (conf.SETTINGS_NAME, conf.LEGACY_SETTINGS_NAME):
        value = getattr(settings, name, None)
        if isinstance(value, Mapping):
            yield name, value


def _raw_values() -> Iterator[tuple[str, str, Any]]:
    """Every configured value as ``(label, key of ours, value)``, from every source."""
    for legacy_name, key in conf.LEGACY_AWS_SETTINGS.items():
        value = getattr(settings, legacy_name, None)
        if value is not None:
            yield legacy_name, key, value
    fallback = getattr(settings, conf.LEGACY_REGION_FALLBACK, None)
    if fallback is not None:
        yield conf.LEGACY_REGION_FALLBACK, "region_name", fallback
    for name, container in _containers():
        known = conf.SPECS if name == conf.SETTINGS_NAME else conf.LEGACY_KEYS
        for raw_key, value in container.items():
            if isinstance(raw_key, str) and raw_key in known:
                key = raw_key if name == conf.SETTINGS_NAME else conf.LEGACY_KEYS[raw_key]
                yield _label(name, raw_key), key, value


# --- errors --------------------------------------------------------------------------------


@register(TAG)
def check_settings_containers(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E003: ``AWS_WS_ASYNC`` / ``WEBSOCKETS`` must be dicts (or unset)."""
    messages: list[CheckMessage] = []
    for name in (conf.SETTINGS_NAME, conf.LEGACY_SETTINGS_NAME):
        value = getattr(settings, name, None)
        if value is not None and not isinstance(value, Mapping):
            messages.append(
                Error(
                    f"settings.{name} must be a dict, not {_describe(value)}.",
                    hint="All of its values are ignored and defaults are used until this is fixed.",
                    id=f"{TAG}.E003",
                )
            )
    return messages


@register(TAG)
def check_setting_values(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E001 (secret format) and E002 (wrong type) for every configured value."""
    messages: list[CheckMessage] = []
    for label, key, value in _raw_values():
        spec = conf.SPECS[key]
        if not conf.VALIDATORS[spec.kind](value):
            messages.append(
                Error(
                    f"{label} is {_describe(value)}; expected {conf.KIND_DESCRIPTIONS[spec.kind]}.",
                    hint=f"The default ({spec.default!r}) is used until this is fixed.",
                    obj=label,
                    id=f"{TAG}.E002",
                )
            )
        elif key == "gateway_secret" and not conf.is_valid(key, value):
            secrets = [value] if isinstance(value, str) else list(value)
            bad = [
                f"#{index} ({len(secret)} characters)"
                for index, secret in enumerate(secrets)
                if not conf.GATEWAY_SECRET_RE.fullmatch(secret)
            ]
            messages.append(
                Error(
                    f"{label} holds an invalid gateway secret: {', '.join(bad)}.",
                    hint=(
                        "Each secret needs at least 32 characters from A-Z a-z 0-9 . _ ~ + / = -; "
                        'e.g. python -c "import secrets; print(secrets.token_urlsafe(48))". '
                        "No secret is enforced until this is fixed."
                    ),
                    obj=label,
                    id=f"{TAG}.E001",
                )
            )
    return messages


def _middleware_present(middleware: Sequence[Any], wanted: str) -> bool:
    """Whether ``wanted`` or a subclass of it is listed (unimportable entries are skipped)."""
    try:
        wanted_class = import_string(wanted)
    except ImportError:  # pragma: no cover - Django itself is installed
        wanted_class = None
    for entry in middleware:
        if not isinstance(entry, str):
            continue
        if entry == wanted:
            return True
        try:
            candidate = import_string(entry)
        except ImportError:
            continue  # Django's own checks and startup report unimportable middleware.
        if (
            wanted_class is not None
            and inspect.isclass(candidate)
            and issubclass(candidate, wanted_class)
        ):
            return True
    return False


@register(TAG, "security")
def check_middleware(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E004: the views read the browser session and ``request.user``; both need middleware."""
    middleware = getattr(settings, "MIDDLEWARE", None)
    if not isinstance(middleware, list | tuple):
        middleware = []
    messages: list[CheckMessage] = []
    for wanted, why in (
        (SESSION_MIDDLEWARE, "the token view and $connect read the browser's session"),
        (AUTH_MIDDLEWARE, "the token view and $connect need request.user"),
    ):
        if not _middleware_present(middleware, wanted):
            messages.append(
                Error(
                    f"'{wanted}' is not in settings.MIDDLEWARE.",
                    hint=f"aws_ws_async needs it: {why}.",
                    id=f"{TAG}.E004",
                )
            )
    return messages


# --- warnings ------------------------------------------------------------------------------


@register(TAG)
def check_unknown_keys(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W002: a key nobody reads is almost always a typo; suggest the closest known key."""
    messages: list[CheckMessage] = []
    for name, container in _containers():
        known = list(conf.SPECS if name == conf.SETTINGS_NAME else conf.LEGACY_KEYS)
        for raw_key in container:
            if isinstance(raw_key, str) and raw_key in known:
                continue
            close = difflib.get_close_matches(str(raw_key), known, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(known)}."
            if (
                name == conf.LEGACY_SETTINGS_NAME
                and isinstance(raw_key, str)
                and raw_key in conf.SPECS
            ):
                hint = (
                    f"Only the predecessor's keys are read from {name}; "
                    f"move it to {conf.SETTINGS_NAME}."
                )
            messages.append(
                Warning(
                    f"Unknown key {raw_key!r} in settings.{name}; it is ignored.",
                    hint=hint,
                    obj=_label(name, str(raw_key)),
                    id=f"{TAG}.W002",
                )
            )
    return messages


@register(TAG)
def check_legacy_settings(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W006 when a key is set in two places (``AWS_WS_ASYNC`` wins); I001 for legacy names."""
    ours = getattr(settings, conf.SETTINGS_NAME, None)
    ours_keys = {k for k in ours if isinstance(k, str)} if isinstance(ours, Mapping) else set()
    messages: list[CheckMessage] = []
    legacy_in_use: list[str] = []
    for label, key, _value in _raw_values():
        if label.startswith(conf.SETTINGS_NAME + "["):
            continue
        legacy_in_use.append(label)
        if key in ours_keys:
            messages.append(
                Warning(
                    f"{label} and {_label(conf.SETTINGS_NAME, key)} are both set; "
                    f"{conf.SETTINGS_NAME} wins.",
                    hint=f"Remove {label} so there is one source of truth.",
                    obj=label,
                    id=f"{TAG}.W006",
                )
            )
    if legacy_in_use:
        messages.append(
            Info(
                f"Legacy setting names are in use: {', '.join(legacy_in_use)}.",
                hint=f"They still work; moving them into settings.{conf.SETTINGS_NAME} is "
                "recommended (see docs/migrating.md).",
                id=f"{TAG}.I001",
            )
        )
    return messages


# --- deployment-only warnings --------------------------------------------------------------


@register(TAG, deploy=True)
def check_gateway_secret_set(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W001: without a secret anyone who reaches the backend can forge gateway requests."""
    if any(key == "gateway_secret" and value for _source, key, value in _raw_values()):
        return []  # Set (if malformed, E001 already says so).
    return [
        Warning(
            "No gateway secret is configured.",
            hint=(
                f"The API id is public, so anyone reaching this backend can forge $connect, "
                f"messages and $disconnect. Set {conf.SETTINGS_NAME}['gateway_secret'] and "
                "re-provision the integrations so API Gateway sends it."
            ),
            id=f"{TAG}.W001",
        )
    ]


@register(TAG, deploy=True)
def check_region(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """W003: sending and provisioning need a region; resolved offline, like at run time."""
    from aws_ws_async.aws import make_session

    try:
        region = make_session().region_name
    except Exception as exc:  # e.g. botocore ProfileNotFound; report, never crash the check
        return [
            Warning(
                f"The AWS region could not be resolved: {type(exc).__name__}: {exc}",
                hint=f"Check {conf.SETTINGS_NAME}['profile_name'] and your AWS configuration.",
                id=f"{TAG}.W003",
            )
        ]
    if region:
        return []
    return [
        Warning(
            "No AWS region is configured.",
            hint=(
                f"Set {conf.SETTINGS_NAME}['region_name'], the AWS_DEFAULT_REGION environment "
                "variable, or a region in your AWS profile."
            ),
            id=f"{TAG}.W003",
        )
    ]


def _routed_view_classes() -> Iterator[tuple[str, type]]:
    """``(route, view_class)`` for every class-based view reachable from ROOT_URLCONF."""
    from django.urls import URLPattern, URLResolver, get_resolver

    try:
        patterns = list(get_resolver().url_patterns)
    except Exception:  # A broken URLconf is reported by Django's own url checks.
        return
    stack: list[tuple[str, Any]] = [("", p) for p in reversed(patterns)]
    seen: set[int] = set()
    while stack:
        prefix, entry = stack.pop()
        if isinstance(entry, URLResolver):
            if id(entry) in seen:
                continue
            seen.add(id(entry))
            try:
                children = list(entry.url_patterns)
            except Exception:  # noqa: S112 - reported by Django's url checks
                continue
            route = prefix + str(entry.pattern)
            stack.extend((route, child) for child in reversed(children))
        elif isinstance(entry, URLPattern):
            view_class = getattr(entry.callback, "view_class", None)
            if inspect.isclass(view_class):
                yield prefix + str(entry.pattern), view_class


def _websocket_views() -> Iterator[tuple[str, type, type]]:
    """``(route, subclass, WebSocketView)`` for routed subclasses; nothing without views."""
    if importlib.util.find_spec("aws_ws_async.views") is None:
        return
    try:
        from aws_ws_async import views
    except Exception:  # Import errors surface at run time with a traceback; not our job here.
        return
    base = getattr(views, "WebSocketView", None)
    if not inspect.isclass(base):
        return
    for route, view_class in _routed_view_classes():
        if issubclass(view_class, base):
            yield route, view_class, base


def _exposed_methods(view_class: type, base: type) -> list[str]:
    """Public functions a subclass adds, as the view's handler discovery would find them.

    Mirrors ``aws_ws_async.views.handlers.discover_handlers``: plain functions on ``base``
    subclasses only (not mixins, not static/class methods), excluding everything ``base``
    defines except ``change_channel``; ``default`` is always callable, so it is not reported.
    """
    reserved = {name for name in dir(base) if name != "change_channel"}
    names: set[str] = set()
    for klass in view_class.__mro__:
        if klass is base or not issubclass(klass, base):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or name in reserved:
                continue
            if inspect.isfunction(member):
                names.add(name)
    return sorted(names)


def _qualname(view_class: type) -> str:
    return f"{view_class.__module__}.{view_class.__qualname__}"


@register(TAG, deploy=True)
def check_routed_views(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W004 unlisted channels allowed; W005 handlers exposed without ``ALLOWED_HANDLERS``."""
    messages: list[CheckMessage] = []
    reported: set[type] = set()
    for route, view_class, base in _websocket_views():
        if view_class in reported:
            continue
        reported.add(view_class)
        name = _qualname(view_class)
        if getattr(view_class, "ALLOW_UNLISTED_CHANNELS", False) is True:
            messages.append(
                Warning(
                    f"{name} (route {route!r}) lets clients join channels that have no "
                    "ChannelPermission row.",
                    hint="Set ALLOW_UNLISTED_CHANNELS = False and add a ChannelPermission row "
                    "for every channel clients may join.",
                    obj=view_class,
                    id=f"{TAG}.W004",
                )
            )
        allowed = getattr(view_class, "ALLOWED_HANDLERS", None)
        additional = getattr(view_class, "ADDITIONAL_ALLOWED_HANDLERS", None) or ()
        if not allowed:
            listed = (
                set(additional) if isinstance(additional, list | tuple | set | frozenset) else set()
            )
            exposed = [m for m in _exposed_methods(view_class, base) if m not in listed]
            if exposed:
                messages.append(
                    Warning(
                        f"{name} (route {route!r}) has no explicit ALLOWED_HANDLERS but defines "
                        f"public methods: {', '.join(exposed)}.",
                        hint="List the message handlers clients may call in ALLOWED_HANDLERS "
                        "(or prefix helper methods with '_') so no method is callable by accident.",
                        obj=view_class,
                        id=f"{TAG}.W005",
                    )
                )
    return messages
