"""The vocabulary settings are declared in: accepted kinds, format rules and :func:`setting`.

Kept apart from ``aws_ws_async.conf`` (which declares every key with it) so that module stays
one list of keys and the code that reads them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.core.exceptions import ImproperlyConfigured

from aws_ws_async.exceptions import AwsWsAsyncError

#: Full-match pattern every gateway secret must satisfy (at least 32 URL/base64-safe chars).
GATEWAY_SECRET_RE = re.compile(r"\A[A-Za-z0-9._~+/=-]{32,}\Z")
#: An HTTP header name API Gateway can map (RFC 9110 token characters, at most 128).
HEADER_NAME_RE = re.compile(r"\A[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}\Z")
#: A dotted import path ``package.module.Name``.
DOTTED_PATH_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+\Z")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_strlist(value: object) -> bool:
    return (
        value is None
        or isinstance(value, str)
        or (isinstance(value, list | tuple) and all(isinstance(i, str) for i in value))
    )


class Kind(NamedTuple):
    """An accepted type: its test and how messages and the docs describe it."""

    test: Callable[[Any], bool]
    description: str


KINDS: dict[str, Kind] = {
    "posint": Kind(lambda v: _is_int(v) and v > 0, "a positive integer"),
    "nonnegint": Kind(lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "prefixlen": Kind(lambda v: _is_int(v) and 1 <= v <= 128, "an integer from 1 to 128"),
    "posfloat": Kind(lambda v: _is_number(v) and v > 0, "a positive number"),
    "nonnegfloat": Kind(lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "bool": Kind(lambda v: isinstance(v, bool), "True or False"),
    "str": Kind(lambda v: isinstance(v, str), "a string"),
    "header": Kind(
        lambda v: isinstance(v, str) and HEADER_NAME_RE.fullmatch(v) is not None,
        "an HTTP header name (letters, digits, '-')",
    ),
    "dotted": Kind(
        lambda v: isinstance(v, str) and DOTTED_PATH_RE.fullmatch(v) is not None,
        "a dotted import path (package.module.Name)",
    ),
    "optstr": Kind(lambda v: v is None or isinstance(v, str), "a string or None"),
    "strlist": Kind(_is_strlist, "a string, a list of strings, or None"),
}
#: Kept for callers of the earlier two tables; both derive from :data:`KINDS`.
VALIDATORS: dict[str, Callable[[Any], bool]] = {k: v.test for k, v in KINDS.items()}
KIND_DESCRIPTIONS: dict[str, str] = {k: v.description for k, v in KINDS.items()}


def as_tuple(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(value)


def hosts(value: Any) -> tuple[str, ...]:
    return tuple(h.lower() for h in as_tuple(value))


def secret_rule(value: Any) -> str | None:
    """Which secrets are malformed, by position and length (never by value).

    ``None`` (or leaving the key out) means "no secret" on purpose; an empty string or list is
    what ``os.environ.get("WS_GATEWAY_SECRET", "")`` gives when the variable is missing, so it is
    malformed, never "off".
    """
    if isinstance(value, str | list | tuple) and not value:
        return f"an empty {type(value).__name__} (use None for no secret)"
    bad = [
        f"#{index} ({len(secret)} characters)"
        for index, secret in enumerate(as_tuple(value))
        if not GATEWAY_SECRET_RE.fullmatch(secret)
    ]
    return ", ".join(bad) or None


@dataclass(frozen=True)
class Spec:
    """One key's declaration; made by :func:`setting`, completed when ``SPECS`` is built."""

    default: Any
    #: One of the keys of :data:`KINDS` ("posint", "bool", "strlist", ...).
    kind: str
    help: str
    #: Also read from the predecessor's ``WEBSOCKETS`` dict (same key name).
    legacy: bool = False
    #: The predecessor's top-level Django settings for this key, lowest precedence first.
    legacy_settings: tuple[str, ...] = ()
    #: A bad value refuses requests and provisioning instead of falling back (fail closed).
    security: bool = False
    #: Turns a valid raw value into the attribute's value (e.g. a list into a tuple).
    parse: Callable[[Any], Any] | None = None
    #: Extra format rule after the type test; returns what is wrong, or None.
    rule: Callable[[Any], str | None] | None = None
    #: The key in ``AWS_WS_ASYNC``; the attribute name unless they differ.
    key: str = ""
    #: The attribute of :class:`AppSettings` that holds the value.
    attr: str = ""

    def convert(self, value: Any) -> Any:
        return self.parse(value) if self.parse is not None else value


def setting(default: Any, kind: str, help: str, **options: Any) -> Any:
    """Declare one key as a dataclass field; its default is the parsed ``default``."""
    spec = Spec(default, kind, help, **options)
    return field(default=spec.convert(default), metadata={"spec": spec})


class InsecureSettings(AwsWsAsyncError, ImproperlyConfigured):
    """A security setting is malformed; nothing runs on a fallback that would mean "off"."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        super().__init__(
            "refusing to run with bad security settings: "
            + "; ".join(f"{key}: {why}" for key, why in problems.items())
        )
        self.problems = dict(problems)
