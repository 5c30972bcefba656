"""The pure request checks of ``aws_ws_async.security``: examples plus properties."""

from __future__ import annotations

import ipaddress
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aws_ws_async.security import (
    client_ip,
    host_allowed,
    is_valid_channel_name,
    is_valid_connection_id,
    origin_allowed,
    parse_origin,
    rate_limit_bucket,
    secret_matches,
)

SECRET_A = "a" * 40
SECRET_B = "b" * 40


# --- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provided", "expected"),
    [
        (SECRET_A, True),
        (SECRET_B, True),
        ("", False),
        (None, False),
        ("a" * 39, False),
        ("a" * 41, False),
        (SECRET_A.upper(), False),
        ("é" * 40, False),
        ("\udcff", False),
    ],
)
def test_secret_matches_any_configured(provided: str | None, expected: bool) -> None:
    assert secret_matches(provided, (SECRET_A, SECRET_B)) is expected


def test_no_secrets_configured_matches_nothing() -> None:
    assert not secret_matches(SECRET_A, ())


@given(st.text(max_size=80))
def test_secret_only_matches_itself(text: str) -> None:
    assert secret_matches(text, (SECRET_A,)) is (text == SECRET_A)


# --- hosts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("example.com", ["example.com"], True),
        ("example.com:8000", ["example.com"], True),
        ("EXAMPLE.com", ["example.com"], True),
        ("ws.example.com", [".example.com"], True),
        ("example.com", [".example.com"], True),
        ("evil-example.com", [".example.com"], False),
        ("anything.test", ["*"], True),
        ("example.com", [], False),
        ("", ["*"], False),
        (None, ["*"], False),
        ("exa mple.com", ["*"], False),
        ("example.com\n", ["example.com"], False),
        ("[::1]:8000", ["[::1]"], True),
        ("example.com.", ["example.com"], True),
    ],
)
def test_host_allowed_uses_djangos_rules(
    host: str | None, allowed: list[str], expected: bool
) -> None:
    assert host_allowed(host, allowed) is expected


@given(st.text(max_size=300))
def test_host_allowed_never_raises(host: str) -> None:
    assert isinstance(host_allowed(host, ["*", ".example.com"]), bool)


# --- origins -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://example.com", ("https", "example.com", "443")),
        ("http://example.com:8000", ("http", "example.com", "8000")),
        ("https://Example.COM/", ("https", "example.com", "443")),
        ("null", None),
        ("", None),
        (None, None),
        ("ws://example.com", None),
        ("https://example.com/path", None),
        ("https://u:p@example.com", None),
        ("https://example.com:99999", None),
        ("https://", None),
        ("https://example.com?x=1", None),
        ("https://example.com#f", None),
    ],
)
def test_parse_origin(origin: str | None, expected: tuple[str, str, str] | None) -> None:
    assert parse_origin(origin) == expected


@pytest.mark.parametrize(
    ("origin", "host", "trusted", "subdomains", "expected"),
    [
        ("https://example.com", "example.com", [], False, True),
        ("http://example.com", "example.com", [], False, True),
        ("https://example.com", "example.com:443", [], False, True),
        ("https://example.com:8443", "example.com", [], False, False),
        ("http://localhost:8000", "localhost:8000", [], False, True),
        ("https://chat.example.com", "example.com", [], False, False),
        ("https://chat.example.com", "example.com", [], True, True),
        ("https://badexample.com", "example.com", [], True, False),
        ("https://example.com.evil.test", "example.com", [], True, False),
        ("https://app.test", "example.com", ["https://app.test"], False, True),
        ("http://app.test", "example.com", ["https://app.test"], False, False),
        ("https://a.pages.test", "example.com", ["https://*.pages.test"], False, True),
        ("https://pages.test", "example.com", ["https://*.pages.test"], False, False),
        ("https://a.pages.test:444", "example.com", ["https://*.pages.test"], False, False),
        ("https://example.com", None, [], False, False),
        ("https://example.com", "", ["not a url"], False, False),
    ],
)
def test_origin_allowed(
    origin: str, host: str | None, trusted: list[str], subdomains: bool, expected: bool
) -> None:
    result = origin_allowed(origin, host=host, trusted_origins=trusted, allow_subdomains=subdomains)
    assert result is expected


@given(st.text(max_size=200), st.text(max_size=100))
def test_origin_allowed_never_raises(origin: str, host: str) -> None:
    assert isinstance(origin_allowed(origin, host=host, trusted_origins=["https://*.x.test"]), bool)


# --- client IP -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "proxies", "expected"),
    [
        ("203.0.113.7", 0, "203.0.113.7"),
        ("1.1.1.1, 203.0.113.7", 0, "203.0.113.7"),
        ("1.1.1.1,203.0.113.7,10.0.0.1", 1, "203.0.113.7"),
        ("203.0.113.7, 10.0.0.1", 2, None),
        ("2001:db8::1", 0, "2001:db8::1"),
        ("[2001:db8::1]:443", 0, "2001:db8::1"),
        ("203.0.113.7:5555", 0, "203.0.113.7"),
        ("::ffff:203.0.113.7", 0, "203.0.113.7"),
        ("fe80::1%eth0", 0, None),
        ("garbage", 0, None),
        ("", 0, None),
        (None, 0, None),
        ("1.1.1.1, ", 0, None),
        ("203.0.113.7", -1, None),
    ],
)
def test_client_ip(header: str | None, proxies: int, expected: str | None) -> None:
    assert client_ip(header, proxies) == expected


@given(
    st.lists(st.ip_addresses().map(str), min_size=1, max_size=6),
    st.data(),
    st.lists(st.text(max_size=20).filter(lambda t: "," not in t), max_size=3),
)
def test_client_ip_is_never_taken_from_the_client_controlled_left(
    hops: list[str], data: st.DataObject, forged: list[str]
) -> None:
    """Whatever the client prepends, the answer is the hop ``proxies`` from the right.

    ``hops`` were appended by infrastructure (API Gateway, then our proxies); with a correct
    ``trusted_proxy_count`` (fewer than the real hops) the forged prefix is never consulted.
    """
    proxies = data.draw(st.integers(min_value=0, max_value=len(hops) - 1))
    header = ", ".join([*forged, *hops])
    assert client_ip(header, proxies) == _normalised(hops[len(hops) - 1 - proxies])


def _normalised(value: str) -> str:
    address = ipaddress.ip_address(value)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


@settings(max_examples=200)
@given(st.text(max_size=200), st.integers(min_value=0, max_value=3))
def test_client_ip_is_valid_or_none(header: str, proxies: int) -> None:
    result = client_ip(header, proxies)
    assert result is None or ipaddress.ip_address(result)
    assert result != "0.0.0.0" or "0.0.0.0" in header


# --- channels and connection ids -----------------------------------------------------------


@pytest.mark.parametrize("name", ["room\n", "room ", "", "a" * 129, "é", "a/b", None, 5])
def test_invalid_channels(name: object) -> None:
    assert not is_valid_channel_name(name)


@pytest.mark.parametrize("name", ["room", "my.app.channel", "a-b_c", "a" * 128])
def test_valid_channels(name: str) -> None:
    assert is_valid_channel_name(name)


CHANNEL_CHARS = string.ascii_letters + string.digits + "_.-"


@given(
    st.one_of(
        st.text(max_size=140),
        # Mostly legal characters with the odd illegal one, so both outcomes are common.
        st.text(alphabet=CHANNEL_CHARS + "\n /é", max_size=140),
        st.text(alphabet=CHANNEL_CHARS, min_size=120, max_size=135),
    )
)
def test_channel_validation_is_a_full_match(name: str) -> None:
    expected = 1 <= len(name) <= 128 and all(c in CHANNEL_CHARS for c in name)
    assert is_valid_channel_name(name) is expected


@pytest.mark.parametrize("cid", ["Jx1bEcl3IAMCJ_A=", "abc+/=-_"])
def test_valid_connection_ids(cid: str) -> None:
    assert is_valid_connection_id(cid)


@pytest.mark.parametrize("cid", ["abc\n", "", "a b", "x" * 129, None])
def test_invalid_connection_ids(cid: object) -> None:
    assert not is_valid_connection_id(cid)


# --- rate-limit buckets (IPv6 by prefix) ---------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "prefix", "expected"),
    [
        ("203.0.113.7", 64, "203.0.113.7"),  # IPv4 stays per address, whatever the prefix
        ("203.0.113.8", 1, "203.0.113.8"),
        ("::ffff:203.0.113.7", 64, "203.0.113.7"),  # IPv4-mapped counts as IPv4
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64, "2001:db8:1:2::"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", 64, "2001:db8:1:2::"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 48, "2001:db8:1::"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 128, "2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
        ("[2001:db8::1]", 64, "2001:db8::"),
        (None, 64, None),
        ("", 64, None),
        ("not-an-ip", 64, None),
        ("fe80::1%eth0", 64, None),  # zone ids are local: no bucket
        ("2001:db8::1", 0, None),  # out-of-range prefixes never make one shared bucket
        ("2001:db8::1", 129, None),
        ("2001:db8::1", True, None),
    ],
)
def test_rate_limit_bucket_examples(ip: str | None, prefix: int, expected: str | None) -> None:
    assert rate_limit_bucket(ip, prefix) == expected


@settings(max_examples=200, deadline=None)
@given(
    a=st.integers(min_value=0, max_value=2**128 - 1),
    b=st.integers(min_value=0, max_value=2**128 - 1),
    prefix=st.integers(min_value=1, max_value=128),
)
def test_rate_limit_bucket_groups_exactly_by_prefix(a: int, b: int, prefix: int) -> None:
    """Two IPv6 addresses share a bucket iff their first ``prefix`` bits agree (an
    independent oracle: integer shifts, not ipaddress networks)."""
    first, second = ipaddress.IPv6Address(a), ipaddress.IPv6Address(b)
    if first.ipv4_mapped is not None or second.ipv4_mapped is not None:
        return
    same = (a >> (128 - prefix)) == (b >> (128 - prefix))
    assert (rate_limit_bucket(str(first), prefix) == rate_limit_bucket(str(second), prefix)) is same
    bucket = rate_limit_bucket(str(first), prefix)
    assert bucket is not None
    assert int(ipaddress.IPv6Address(bucket)) == (a >> (128 - prefix)) << (128 - prefix)
