"""System checks: every id fires on the input it is for, and no wrong type crashes a check."""

from __future__ import annotations

import types
from typing import Any

import pytest
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.core.checks import CheckMessage
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import path

from aws_ws_async import checks
from aws_ws_async.conf import SPECS

GOOD_SECRET = "s" * 40
ALL_CHECKS = (
    checks.check_settings_containers,
    checks.check_setting_values,
    checks.check_middleware,
    checks.check_unknown_keys,
    checks.check_legacy_settings,
    checks.check_gateway_secret_set,
    checks.check_region,
    checks.check_routed_views,
)


def ids(messages: list[CheckMessage]) -> list[str]:
    return [str(m.id) for m in messages]


def run_all() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for check in ALL_CHECKS:
        messages.extend(check(None))
    return messages


@pytest.fixture
def clean(settings: Any) -> Any:
    """Settings with nothing to complain about except what a test sets."""
    settings.AWS_WS_ASYNC = {"region_name": "eu-west-1", "gateway_secret": GOOD_SECRET}
    for name in ("WEBSOCKETS", "AWS_GATEWAY_REGION_NAME", "AWS_REGION_NAME", "AWS_IAM_PROFILE"):
        if hasattr(settings, name):
            delattr(settings, name)
    # No routed views unless a test routes some (the suite's own URLconf has several).
    empty = types.ModuleType("tests_check_empty_urls")
    empty.urlpatterns = []  # type: ignore[attr-defined]
    settings.ROOT_URLCONF = empty
    return settings


def test_clean_settings_give_no_messages(clean: Any) -> None:
    assert run_all() == []


# --- E003: container type --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["oops", 5, ["region_name", "x"], ("a",), True])
@pytest.mark.parametrize("name", ["AWS_WS_ASYNC", "WEBSOCKETS"])
def test_e003_container_not_a_dict(clean: Any, name: str, value: Any) -> None:
    setattr(clean, name, value)
    messages = checks.check_settings_containers(None)
    assert ids(messages) == ["aws_ws_async.E003"]
    assert name in messages[0].msg
    assert type(value).__name__ in messages[0].msg
    # Nothing else crashes on the same settings.
    assert "aws_ws_async.E003" in ids(run_all())


# Django 6.1's check command also runs database checks, on every database.
@pytest.mark.django_db(databases="__all__")
def test_e003_survives_manage_py_check(clean: Any) -> None:
    clean.AWS_WS_ASYNC = "oops"
    with pytest.raises(SystemCheckError, match=r"aws_ws_async\.E003"):
        call_command("check")


# --- E002: wrong types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "wanted"),
    [
        ("max_concurrency", True, "positive integer"),  # a bool is not an int
        ("max_concurrency", 0, "positive integer"),
        ("token_expiry_seconds", "60", "positive integer"),
        ("trusted_proxy_count", -1, "integer >= 0"),
        ("push_changes_to_aws", 1, "True or False"),
        ("region_name", 5, "string or None"),
        ("allowed_integration_hosts", {"a": 1}, "list of strings"),
        ("allowed_integration_hosts", ["ok.example.com", 3], "list of strings"),
        ("gateway_secret", 123, "list of strings"),
        ("backoff_base_seconds", "fast", "positive number"),
        ("connect_timeout_seconds", [1], "positive number"),
    ],
)
def test_e002_wrong_type(clean: Any, key: str, value: Any, wanted: str) -> None:
    clean.AWS_WS_ASYNC = {**clean.AWS_WS_ASYNC, key: value}
    messages = checks.check_setting_values(None)
    assert ids(messages) == ["aws_ws_async.E002"]
    message = messages[0]
    assert key in message.msg
    assert type(value).__name__ in message.msg
    assert wanted in message.msg
    assert "default" in (message.hint or "")


def test_e002_legacy_dict_and_top_level_settings(clean: Any) -> None:
    clean.WEBSOCKETS = {"token_expiry_seconds": "soon"}
    clean.AWS_GATEWAY_REGION_NAME = ["eu-west-1"]
    messages = checks.check_setting_values(None)
    assert ids(messages) == ["aws_ws_async.E002", "aws_ws_async.E002"]
    text = " ".join(m.msg for m in messages)
    assert "AWS_GATEWAY_REGION_NAME" in text
    assert "WEBSOCKETS['token_expiry_seconds']" in text


def test_e002_non_string_keys_do_not_crash(clean: Any) -> None:
    clean.AWS_WS_ASYNC = {**clean.AWS_WS_ASYNC, 5: "x", None: 1}
    assert checks.check_setting_values(None) == []
    assert ids(checks.check_unknown_keys(None)) == ["aws_ws_async.W002", "aws_ws_async.W002"]


# --- E001: secret format ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        "too-short",
        "x" * 31,
        "has spaces in it but is long enough ok",
        GOOD_SECRET + "\n",  # a full match: no trailing newline sneaks through
        [GOOD_SECRET, "short"],
    ],
)
def test_e001_invalid_secret(clean: Any, secret: Any) -> None:
    clean.AWS_WS_ASYNC = {**clean.AWS_WS_ASYNC, "gateway_secret": secret}
    messages = checks.check_setting_values(None)
    assert ids(messages) == ["aws_ws_async.E001"]
    # The secret itself is never echoed into logs or the console.
    bad = secret[-1] if isinstance(secret, list) else secret
    assert bad not in messages[0].msg
    assert "characters" in messages[0].msg


@pytest.mark.parametrize("secret", [GOOD_SECRET, [GOOD_SECRET, "t" * 32], "A1._~+/=-" * 4])
def test_e001_valid_secrets(clean: Any, secret: Any) -> None:
    clean.AWS_WS_ASYNC = {**clean.AWS_WS_ASYNC, "gateway_secret": secret}
    assert checks.check_setting_values(None) == []


def test_e001_in_legacy_dict(clean: Any) -> None:
    clean.AWS_WS_ASYNC = {"region_name": "eu-west-1"}
    clean.WEBSOCKETS = {"gateway_secret": "short"}
    assert ids(checks.check_setting_values(None)) == ["aws_ws_async.E001"]


# --- E004: middleware ------------------------------------------------------------------------


SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"


@pytest.mark.parametrize(
    ("middleware", "missing"),
    [
        ([SESSION], [AUTH]),
        ([AUTH], [SESSION]),
        ([], [SESSION, AUTH]),
        (None, [SESSION, AUTH]),
        ("not a list", [SESSION, AUTH]),
        ([5, "no.such.Middleware", AUTH], [SESSION]),
    ],
)
def test_e004_middleware_missing(clean: Any, middleware: Any, missing: list[str]) -> None:
    clean.MIDDLEWARE = middleware
    messages = checks.check_middleware(None)
    assert ids(messages) == ["aws_ws_async.E004"] * len(missing)
    for message, name in zip(messages, missing, strict=True):
        assert name in message.msg


class ProjectAuthMiddleware(AuthenticationMiddleware):
    """A project's own subclass still provides request.user."""


def test_e004_accepts_subclasses(clean: Any) -> None:
    clean.MIDDLEWARE = [SESSION, "tests.test_checks.ProjectAuthMiddleware"]
    assert checks.check_middleware(None) == []
    clean.MIDDLEWARE = [SESSION, "django.contrib.auth.middleware.RemoteUserMiddleware"]
    assert ids(checks.check_middleware(None)) == ["aws_ws_async.E004"]


# --- W002: unknown keys ------------------------------------------------------------------------


def test_w002_unknown_key_suggests_closest(clean: Any) -> None:
    clean.AWS_WS_ASYNC = {**clean.AWS_WS_ASYNC, "token_expiry_secs": 30}
    messages = checks.check_unknown_keys(None)
    assert ids(messages) == ["aws_ws_async.W002"]
    assert "token_expiry_secs" in messages[0].msg
    assert "token_expiry_seconds" in (messages[0].hint or "")


def test_w002_unknown_key_without_close_match_lists_keys(clean: Any) -> None:
    clean.AWS_WS_ASYNC = {**clean.AWS_WS_ASYNC, "zzzzzz": 1}
    messages = checks.check_unknown_keys(None)
    assert ids(messages) == ["aws_ws_async.W002"]
    assert "max_concurrency" in (messages[0].hint or "")


def test_w002_new_key_in_legacy_dict_is_not_read(clean: Any) -> None:
    clean.WEBSOCKETS = {"max_concurrency": 5}
    messages = checks.check_unknown_keys(None)
    assert ids(messages) == ["aws_ws_async.W002"]
    assert "AWS_WS_ASYNC" in (messages[0].hint or "")


# --- W006 / I001: legacy names ---------------------------------------------------------------


def test_w006_same_key_in_both_dicts(clean: Any) -> None:
    clean.WEBSOCKETS = {"token_expiry_seconds": 30}
    clean.AWS_WS_ASYNC = {**clean.AWS_WS_ASYNC, "token_expiry_seconds": 90}
    messages = checks.check_legacy_settings(None)
    assert ids(messages) == ["aws_ws_async.W006", "aws_ws_async.I001"]
    assert "AWS_WS_ASYNC wins" in messages[0].msg


def test_w006_legacy_region_setting_and_ours(clean: Any) -> None:
    clean.AWS_GATEWAY_REGION_NAME = "us-west-2"
    messages = checks.check_legacy_settings(None)
    assert ids(messages) == ["aws_ws_async.W006", "aws_ws_async.I001"]
    assert "AWS_GATEWAY_REGION_NAME" in messages[0].msg


def test_i001_legacy_names_only(clean: Any) -> None:
    clean.AWS_WS_ASYNC = {}
    clean.WEBSOCKETS = {"token_expiry_seconds": 30}
    messages = checks.check_legacy_settings(None)
    assert ids(messages) == ["aws_ws_async.I001"]
    assert messages[0].is_serious() is False


# --- W001: deploy, no secret -------------------------------------------------------------------


def test_w001_no_secret(clean: Any) -> None:
    clean.AWS_WS_ASYNC = {"region_name": "eu-west-1"}
    assert ids(checks.check_gateway_secret_set(None)) == ["aws_ws_async.W001"]


def test_w001_secret_from_legacy_dict_counts(clean: Any) -> None:
    clean.AWS_WS_ASYNC = {"region_name": "eu-west-1"}
    clean.WEBSOCKETS = {"gateway_secret": GOOD_SECRET}
    assert checks.check_gateway_secret_set(None) == []


def test_w001_only_with_deploy(clean: Any) -> None:
    clean.AWS_WS_ASYNC = {"region_name": "eu-west-1"}
    from django.core.checks import run_checks

    assert "aws_ws_async.W001" not in ids(run_checks(tags=["aws_ws_async"]))
    assert "aws_ws_async.W001" in ids(
        run_checks(tags=["aws_ws_async"], include_deployment_checks=True)
    )


# --- W003: deploy, no region -------------------------------------------------------------------


def test_w003_no_region(clean: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    clean.AWS_WS_ASYNC = {"gateway_secret": GOOD_SECRET}
    messages = checks.check_region(None)
    assert ids(messages) == ["aws_ws_async.W003"]
    assert "region_name" in (messages[0].hint or "")


def test_w003_region_from_environment_is_enough(
    clean: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    clean.AWS_WS_ASYNC = {"gateway_secret": GOOD_SECRET}
    assert checks.check_region(None) == []


def test_w003_missing_profile_is_reported_not_raised(clean: Any) -> None:
    clean.AWS_WS_ASYNC = {"gateway_secret": GOOD_SECRET, "profile_name": "no-such-profile"}
    messages = checks.check_region(None)
    assert ids(messages) == ["aws_ws_async.W003"]
    assert "ProfileNotFound" in messages[0].msg


# --- W004 / W005: routed WebSocketView subclasses ----------------------------------------------


def _route(settings: Any, **views: type) -> None:
    module = types.ModuleType("tests_check_urls")
    module.urlpatterns = [  # type: ignore[attr-defined]
        path(f"{name}/<slug:route>", view.as_view()) for name, view in views.items()
    ]
    settings.ROOT_URLCONF = module


def test_w004_w005_need_views_module(clean: Any) -> None:
    from aws_ws_async import views

    class Open(views.WebSocketView):  # type: ignore[misc,name-defined]
        ALLOW_UNLISTED_CHANNELS = True
        ALLOWED_HANDLERS: set[str] = set()

        def shout(self, request: Any) -> None:
            """A public method: a handler candidate."""

    class Closed(views.WebSocketView):  # type: ignore[misc,name-defined]
        ALLOW_UNLISTED_CHANNELS = False
        ALLOWED_HANDLERS = {"shout"}

        def shout(self, request: Any) -> None:
            """Listed explicitly."""

        def _helper(self) -> None:
            """Private: never a handler."""

    _route(clean, open=Open, closed=Closed)
    messages = checks.check_routed_views(None)
    assert sorted(ids(messages)) == ["aws_ws_async.W004", "aws_ws_async.W005"]
    assert all(m.obj is Open for m in messages)
    w005 = next(m for m in messages if m.id == "aws_ws_async.W005")
    assert "shout" in w005.msg

    class Listed(views.WebSocketView):  # type: ignore[misc,name-defined]
        ALLOW_UNLISTED_CHANNELS = False
        ALLOWED_HANDLERS: set[str] = set()
        ADDITIONAL_ALLOWED_HANDLERS = ["shout"]

        def shout(self, request: Any) -> None:
            """Listed through ADDITIONAL_ALLOWED_HANDLERS."""

    class HelperMixin:
        def format_reply(self) -> str:
            """A mixin's public method is not a handler (the views skip non-view classes)."""
            return ""

    class Quiet(HelperMixin, views.WebSocketView):  # type: ignore[misc,name-defined]
        ALLOW_UNLISTED_CHANNELS = False

        @staticmethod
        def util() -> None:
            """Static methods are never handlers."""

        async def default(self, request: Any) -> None:
            """``default`` is always callable; overriding it is not an accidental exposure."""

    _route(clean, listed=Listed, quiet=Quiet)
    assert checks.check_routed_views(None) == []


def test_routed_view_walk_ignores_plain_views_and_nested_resolvers(clean: Any) -> None:
    from django.urls import include
    from django.views import View

    class Plain(View):
        ALLOW_UNLISTED_CHANNELS = True

    inner = types.ModuleType("tests_check_inner_urls")
    inner.urlpatterns = [path("p/", Plain.as_view())]  # type: ignore[attr-defined]
    module = types.ModuleType("tests_check_urls_nested")
    module.urlpatterns = [path("x/", include(inner))]  # type: ignore[attr-defined]
    clean.ROOT_URLCONF = module
    routes = list(checks._routed_view_classes())
    assert routes == [("x/p/", Plain)]
    assert checks.check_routed_views(None) == []


def test_routed_view_walk_survives_broken_urlconf(clean: Any) -> None:
    clean.ROOT_URLCONF = "tests.no_such_urls_module"
    assert list(checks._routed_view_classes()) == []
    assert checks.check_routed_views(None) == []


# --- E005: transport path; E006: misspelt security key; fail-closed hints --------------------


@pytest.mark.parametrize(
    "path",
    [
        "aws_ws_async.delivery.no_such_module.Transport",
        "aws_ws_async.delivery.aiobotocore_transport.NoSuchName",
        "aws_ws_async.conf.SETTINGS_NAME",  # importable, but a str is not a factory
    ],
)
def test_e005_transport_path_that_cannot_be_used(clean: Any, path: str) -> None:
    clean.AWS_WS_ASYNC = {**clean.AWS_WS_ASYNC, "transport": path}
    messages = checks.check_transport(None)
    assert ids(messages) == ["aws_ws_async.E005"]
    assert path in messages[0].msg


def test_e005_default_transport_imports(clean: Any) -> None:
    assert checks.check_transport(None) == []
    assert "aws_ws_async.E005" not in ids(run_all())


def test_malformed_transport_path_is_e002(clean: Any) -> None:
    clean.AWS_WS_ASYNC = {**clean.AWS_WS_ASYNC, "transport": "not a path"}
    assert ids(checks.check_setting_values(None)) == ["aws_ws_async.E002"]


def test_e006_misspelt_secret_key(clean: Any) -> None:
    clean.AWS_WS_ASYNC = {"region_name": "eu-west-1", "gateway_secrets": [GOOD_SECRET]}
    messages = checks.check_unknown_keys(None)
    assert ids(messages) == ["aws_ws_async.E006"]
    assert "gateway_secret" in (messages[0].hint or "")
    assert GOOD_SECRET not in messages[0].msg


@pytest.mark.parametrize(
    ("key", "value"),
    [("gateway_secret", "short"), ("trusted_proxy_count", -1), ("ipv6_rate_limit_prefix", 129)],
)
def test_security_errors_say_requests_are_refused(clean: Any, key: str, value: Any) -> None:
    clean.AWS_WS_ASYNC = {**clean.AWS_WS_ASYNC, key: value}
    (message,) = checks.check_setting_values(None)
    assert "refused" in (message.hint or "")
    assert repr(value) not in (message.hint or "")


@pytest.mark.parametrize(
    "value",
    [
        "short",
        ["s" * 40, "x"],
        12,
        None,
        -1,
        129,
        0,
        True,
        "X Bad",
        "",
        ["a.example.com", 5],
        {"k": 1},
        3.5,
        "1",
    ],
)
@pytest.mark.parametrize("key", sorted(k for k, s in SPECS.items() if s.security))
def test_checks_and_run_time_agree(clean: Any, key: str, value: Any) -> None:
    """One judge: a value the run time refuses is exactly a value the checks report."""
    from aws_ws_async.conf import get_settings

    clean.AWS_WS_ASYNC = {**clean.AWS_WS_ASYNC, key: value}
    reported = bool(checks.check_setting_values(None))
    assert reported is (key in get_settings().insecure)
