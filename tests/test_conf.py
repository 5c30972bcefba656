"""The settings object: defaults, precedence of setting names, fallback on bad values, caching."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from aws_ws_async import conf
from aws_ws_async.conf import SPECS, AppSettings, get_settings


@pytest.fixture
def bare(settings: Any) -> Any:
    """No aws_ws_async settings at all, under any name.

    Assigning None (not ``del``) so ``setting_changed`` fires; None counts as unset.
    """
    for name in (
        "AWS_WS_ASYNC",
        "WEBSOCKETS",
        "AWS_GATEWAY_REGION_NAME",
        "AWS_REGION_NAME",
        "AWS_IAM_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        setattr(settings, name, None)
    return settings


def test_defaults_match_specs(bare: Any) -> None:
    s = get_settings()
    names = {f.name for f in dataclasses.fields(AppSettings)}
    for key, spec in SPECS.items():
        if key in {"gateway_secret", "allowed_integration_hosts"}:
            continue
        assert key in names, key
        assert getattr(s, key) == spec.default, key
    assert s.gateway_secrets == ()
    assert s.gateway_secret is None
    assert s.allowed_integration_hosts == ()
    assert s.token_expiry_seconds == 60
    assert s.rate_limit_window_seconds == 60
    assert all(source == "default" for source in s.sources.values())


def test_every_spec_default_is_valid() -> None:
    for key, spec in SPECS.items():
        assert conf.is_valid(key, spec.default), key


def test_precedence_ours_over_websockets_over_aws_settings(bare: Any) -> None:
    bare.AWS_GATEWAY_REGION_NAME = "eu-central-1"
    bare.AWS_REGION_NAME = "ignored-when-gateway-region-set"
    bare.AWS_IAM_PROFILE = "legacy-profile"
    bare.WEBSOCKETS = {"token_expiry_seconds": 30, "rate_limit_max_attempts": 5}
    bare.AWS_WS_ASYNC = {"token_expiry_seconds": 90}
    s = get_settings()
    assert s.token_expiry_seconds == 90
    assert s.sources["token_expiry_seconds"] == "AWS_WS_ASYNC"
    assert s.rate_limit_max_attempts == 5
    assert s.sources["rate_limit_max_attempts"] == "WEBSOCKETS"
    assert s.region_name == "eu-central-1"
    assert s.sources["region_name"] == "AWS_GATEWAY_REGION_NAME"
    assert s.profile_name == "legacy-profile"
    bare.AWS_WS_ASYNC = {"region_name": "us-west-2"}
    assert get_settings().region_name == "us-west-2"


def test_aws_region_name_is_the_last_fallback(bare: Any) -> None:
    bare.AWS_REGION_NAME = "sa-east-1"
    s = get_settings()
    assert s.region_name == "sa-east-1"
    assert s.sources["region_name"] == "AWS_REGION_NAME"


def test_legacy_keys_only_from_websockets(bare: Any) -> None:
    bare.WEBSOCKETS = {"max_concurrency": 7, "gateway_secret": "k" * 32}
    s = get_settings()
    assert s.max_concurrency == SPECS["max_concurrency"].default  # not a predecessor key
    assert s.gateway_secret == "k" * 32


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("token_expiry_seconds", True),
        ("token_expiry_seconds", 0),
        ("token_expiry_seconds", "60"),
        ("max_concurrency", -3),
        ("push_changes_to_aws", "yes"),
        ("backoff_base_seconds", 0),
        ("region_name", 12),
        ("gateway_secret", "too-short"),
        ("gateway_secret", ["k" * 32, "short"]),
        ("allowed_integration_hosts", [1, 2]),
    ],
)
def test_invalid_values_fall_back_to_defaults(bare: Any, key: str, bad: Any) -> None:
    bare.WEBSOCKETS = {"token_expiry_seconds": 45}
    bare.AWS_WS_ASYNC = {key: bad}
    s = get_settings()
    if key == "gateway_secret":
        assert s.gateway_secrets == ()
    elif key == "allowed_integration_hosts":
        assert s.allowed_integration_hosts == ()
    else:
        # A bad value falls back to the *default*, not to a lower-precedence source: the
        # project meant to override that source, and E002 reports the mistake.
        assert getattr(s, key) == SPECS[key].default
    assert key not in s.sources or s.sources[key] != "AWS_WS_ASYNC"


@pytest.mark.parametrize("container", ["oops", 5, ["token_expiry_seconds"], None, 0.5])
def test_non_dict_containers_are_ignored(bare: Any, container: Any) -> None:
    bare.AWS_WS_ASYNC = container
    bare.WEBSOCKETS = container
    assert get_settings() == AppSettings()


def test_secrets_and_hosts_normalised(bare: Any) -> None:
    bare.AWS_WS_ASYNC = {
        "gateway_secret": ["a" * 32, "b" * 40],
        "allowed_integration_hosts": "API.Example.com",
    }
    s = get_settings()
    assert s.gateway_secrets == ("a" * 32, "b" * 40)
    assert s.gateway_secret == "a" * 32  # the first one is provisioned
    assert s.allowed_integration_hosts == ("api.example.com",)


def test_settings_fixture_invalidates_cache(settings: Any) -> None:
    settings.AWS_WS_ASYNC = {"max_concurrency": 11}
    first = get_settings()
    assert first is get_settings()  # cached
    assert first.max_concurrency == 11
    settings.AWS_WS_ASYNC = {"max_concurrency": 12}
    assert get_settings().max_concurrency == 12
    settings.WEBSOCKETS = {"token_expiry_seconds": 33}
    assert get_settings().token_expiry_seconds == 33
    settings.AWS_GATEWAY_REGION_NAME = "ca-central-1"
    settings.AWS_WS_ASYNC = {}
    assert get_settings().region_name == "ca-central-1"


def test_override_settings_restores_values() -> None:
    from django.test import override_settings

    before = get_settings().max_concurrency
    with override_settings(AWS_WS_ASYNC={"max_concurrency": 3}):
        assert get_settings().max_concurrency == 3
    assert get_settings().max_concurrency == before


def test_settings_docs_table_is_up_to_date() -> None:
    """docs/settings.md documents every key with its current default (generated table)."""
    from pathlib import Path

    from docs.settings_table import render_table

    text = (Path(__file__).resolve().parent.parent / "docs" / "settings.md").read_text()
    assert render_table() in text, "run: python docs/settings_table.py"
    for key in SPECS:
        assert f"`{key}`" in text


# --- one declaration per key -------------------------------------------------------------


def test_every_field_is_declared_once_and_specs_derive_from_it() -> None:
    """``SPECS`` is built from the fields: no key can exist in one list and not the other."""
    fields = [f for f in dataclasses.fields(AppSettings) if f.name not in {"sources", "problems"}]
    assert sorted(spec.attr for spec in SPECS.values()) == sorted(f.name for f in fields)
    for f in fields:
        spec = f.metadata["spec"]
        assert f.default == spec.convert(spec.default), f.name
    assert SPECS["gateway_secret"].attr == "gateway_secrets"
    assert {k: k for k, s in SPECS.items() if s.legacy} == conf.LEGACY_KEYS
    assert conf.LEGACY_AWS_SETTINGS == {
        "AWS_GATEWAY_REGION_NAME": "region_name",
        "AWS_IAM_PROFILE": "profile_name",
        "AWS_ACCESS_KEY_ID": "access_key_id",
        "AWS_SECRET_ACCESS_KEY": "secret_access_key",
    }
    assert conf.LEGACY_REGION_FALLBACK == "AWS_REGION_NAME"


def test_old_attribute_names_still_resolve(bare: Any) -> None:
    s = get_settings()
    for name in ("gateway_secret", "gateway_secrets", "rate_limit_window_seconds", "transport"):
        getattr(s, name)
    assert set(conf.VALIDATORS) == set(conf.KIND_DESCRIPTIONS) == set(conf.KINDS)


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("gateway_secret", "too-short"),
        ("gateway_secret", ["k" * 32, "short"]),
        ("gateway_secret", ""),  # os.environ.get("WS_GATEWAY_SECRET", "") with the variable unset
        ("gateway_secret", []),
        ("gateway_secret_header", "has space"),
        ("connection_id_header", ""),
        ("trusted_proxy_count", -1),
        ("ipv6_rate_limit_prefix", 0),
        ("ipv6_rate_limit_prefix", 129),
        ("token_expiry_seconds", 0),
        ("allowed_integration_hosts", [1]),
    ],
)
def test_bad_security_value_is_insecure_not_off(bare: Any, key: str, bad: Any) -> None:
    bare.AWS_WS_ASYNC = {key: bad}
    s = get_settings()
    assert key in s.insecure
    assert "short" not in s.insecure[key] or key != "gateway_secret"  # no secret value echoed
    with pytest.raises(conf.InsecureSettings, match=key):
        s.raise_if_insecure()


def test_no_secret_on_purpose_is_none_or_absent(bare: Any) -> None:
    bare.AWS_WS_ASYNC = {"gateway_secret": None}
    assert get_settings().insecure == {}
    assert get_settings().gateway_secrets == ()


def test_ipv6_prefix_bounds(bare: Any) -> None:
    for good in (1, 48, 64, 128):
        bare.AWS_WS_ASYNC = {"ipv6_rate_limit_prefix": good}
        assert get_settings().ipv6_rate_limit_prefix == good
        assert get_settings().insecure == {}


def test_ordinary_bad_value_is_a_problem_but_not_insecure(bare: Any) -> None:
    bare.AWS_WS_ASYNC = {"max_concurrency": 0}
    s = get_settings()
    assert "max_concurrency" in s.problems
    assert s.insecure == {}
    s.raise_if_insecure()


def test_insecure_is_logged_once_per_settings(bare: Any, caplog: Any) -> None:
    import logging

    bare.AWS_WS_ASYNC = {"gateway_secret": "short"}
    caplog.set_level(logging.ERROR, logger="aws_ws_async.conf")
    for _ in range(3):
        conf.log_insecure_once(get_settings())
    assert len(caplog.records) == 1
    bare.AWS_WS_ASYNC = {"gateway_secret": 5}  # a new configuration is reported again
    conf.log_insecure_once(get_settings())
    assert len(caplog.records) == 2


@pytest.mark.parametrize(
    ("key", "bad"),
    [("gateway_secret", "short"), ("allowed_integration_hosts", ["ok.example.com", 7])],
)
def test_provisioning_refuses_on_bad_security_settings(bare: Any, key: str, bad: Any) -> None:
    """Provisioning on the fallback would push "no secret" (removing the header mapping from
    every integration) or accept integration URLs on any host."""
    from aws_ws_async.provisioning.spec import build_spec, check_hosts, request_parameters

    bare.AWS_WS_ASYNC = {"gateway_secret": "s" * 40, "allowed_integration_hosts": ["a.test"]}
    spec = build_spec(name="api", target_base_endpoint="https://a.test/ws/", stage_name="prod")
    assert request_parameters()
    check_hosts(spec)
    bare.AWS_WS_ASYNC = {**bare.AWS_WS_ASYNC, key: bad}
    with pytest.raises(conf.InsecureSettings, match=key):
        request_parameters()
    with pytest.raises(conf.InsecureSettings, match=key):
        check_hosts(spec)
