"""System checks (``manage.py check``) for aws_ws_async settings, middleware and routed views.

Every check inspects raw values with ``isinstance`` before using them, so a setting of the wrong
type (``AWS_WS_ASYNC = "oops"``, ``WEBSOCKETS = 5``, a list where a dict belongs) is *reported*
with an id and never crashes ``check``, ``migrate`` or ``runserver`` (a defect of the
predecessor). Secrets are never echoed in messages. Values are judged by ``conf.validate``, the
same function the run time uses, and handler exposure by the view's own
``get_allowed_handlers``, so a check can never disagree with what a request would do.

Ids (documented in ``docs/checks.md``):

* ``E001`` invalid gateway secret format, ``E002`` value of the wrong type, ``E003`` settings
  container is not a dict, ``E004`` session or authentication middleware missing, ``E005`` the
  ``transport`` dotted path cannot be imported, ``E006`` an unknown key that looks like a
  misspelt security key (requests are refused meanwhile);
* ``W002`` unknown key, ``W006`` a key set both in ``AWS_WS_ASYNC`` and a legacy setting,
  ``I001`` legacy setting names in use; ``W007`` ``async_database`` on for a database that
  cannot use it;
* deploy-only (``check --deploy``): ``W001`` no gateway secret, ``W003`` no AWS region,
  ``W004`` a routed ``WebSocketView`` allows unlisted channels, ``W005`` a routed
  ``WebSocketView`` exposes handler methods without an explicit ``ALLOWED_HANDLERS``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Warning, register
from django.utils.module_loading import import_string

from aws_ws_async import conf
from aws_ws_async.views.checks import _routed_view_classes as _routed_view_classes
from aws_ws_async.views.checks import check_routed_views as check_routed_views

TAG = "aws_ws_async"

#: Keys whose values must never appear in a message.
SECRET_KEYS = frozenset({"gateway_secret", "access_key_id", "secret_access_key", "session_token"})

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


def _describe_raw(key: str, value: object) -> str:
    """Like :func:`_describe`, but credentials are described by their type only."""
    if key in SECRET_KEYS:
        return f"a value of type {type(value).__name__}"
    return _describe(value)


# --- errors --------------------------------------------------------------------------------


@register(TAG)
def check_settings_containers(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E003: ``AWS_WS_ASYNC`` / ``WEBSOCKETS`` must be dicts (or unset)."""
    return [
        Error(
            f"settings.{name} must be a dict, not {_describe(value)}.",
            hint="All of its values are ignored and every request is refused (503) until this "
            "is fixed, since the gateway secret it may hold cannot be read.",
            id=f"{TAG}.E003",
        )
        for name, value in conf.containers()
        if not isinstance(value, Mapping)
    ]


@register(TAG)
def check_setting_values(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E001 (secret format) and E002 (wrong type) for every configured value."""
    messages: list[CheckMessage] = []
    for label, key, value, _source in conf.raw_values():
        problem = conf.validate(key, value)
        if problem is None:
            continue
        spec = conf.SPECS[key]
        if spec.security:
            outcome = "Every request is refused (503) and provisioning refuses to run"
            hint_default = f"{outcome}; the default is not used instead."
        else:
            hint_default = f"The default ({spec.default!r}) is used until this is fixed."
        code, detail = problem
        if code == "format" and key == "gateway_secret":
            messages.append(
                Error(
                    f"{label} holds an invalid gateway secret: {detail}.",
                    hint=(
                        "Each secret needs at least 32 characters from A-Z a-z 0-9 . _ ~ + / = -; "
                        'e.g. python -c "import secrets; print(secrets.token_urlsafe(48))". '
                        f"{outcome} until this is fixed."
                    ),
                    obj=label,
                    id=f"{TAG}.E001",
                )
            )
            continue
        expected = conf.KINDS[spec.kind].description if code == "type" else detail
        messages.append(
            Error(
                f"{label} is {_describe_raw(key, value)}; expected {expected}.",
                hint=hint_default,
                obj=label,
                id=f"{TAG}.E002",
            )
        )
    return messages


@register(TAG)
def check_transport(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E005: the ``transport`` dotted path is imported here, lazily, so a typo shows up in
    ``check`` instead of in the first broadcast."""
    path = conf.get_settings().transport
    try:
        factory = import_string(path)
    except Exception as exc:  # ImportError, or an error raised while importing the module
        reason = f"{type(exc).__name__}: {exc}"
    else:
        if callable(factory):
            return []
        reason = f"{type(factory).__name__} is not callable"
    return [
        Error(
            f"{conf.SETTINGS_NAME}['transport'] = {path!r} cannot be used ({reason}).",
            hint="Name a Transport class or factory by its dotted path, e.g. the default "
            f"{conf.SPECS['transport'].default!r}.",
            id=f"{TAG}.E005",
        )
    ]


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
    insecure = conf.get_settings().insecure
    for name, container in conf.containers():
        if not isinstance(container, Mapping):
            continue
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
            label = _label(name, str(raw_key))
            if label in insecure:
                messages.append(
                    Error(
                        f"Unknown key {raw_key!r} in settings.{name} looks like a misspelt "
                        "security setting; every request is refused (503) until it is fixed.",
                        hint=hint,
                        obj=label,
                        id=f"{TAG}.E006",
                    )
                )
                continue
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
    for label, key, _value, _source in conf.raw_values():
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
    if any(raw.key == "gateway_secret" and raw.value for raw in conf.raw_values()):
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


@register(TAG, "database")
def check_async_database(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W007: ``async_database`` is on but a database cannot use it (not PostgreSQL, or psycopg
    2): the routes keep working on the sync path, so it is only a warning,
    but the setting does nothing there and the operator believes otherwise."""
    if not conf.get_settings().async_database:
        return []
    from django.db import connections

    from aws_ws_async import asyncdb

    messages: list[CheckMessage] = []
    for alias in connections:
        reason = asyncdb.unavailable_reason(alias)
        if reason is not None:
            messages.append(
                Warning(
                    f"{conf.SETTINGS_NAME}['async_database'] is on, but {reason}: the gateway "
                    f"routes' statements on {alias!r} run on the sync path (a thread hop each).",
                    hint="Use PostgreSQL with psycopg 3 (pip install 'aws-ws-async[fast]'), "
                    "or turn the setting off.",
                    id=f"{TAG}.W007",
                )
            )
    return messages
