"""Validators shared by models, forms and views. Every pattern is a *full* match.

``re.match("^...$")`` accepts a trailing newline; these use ``\\A``/``\\Z`` and ``fullmatch`` so
``"room\\n"`` is rejected everywhere.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

#: Channel names: letters, digits, ``_``, ``-`` and ``.`` (dots allow app-package names).
CHANNEL_NAME_RE = re.compile(r"\A[A-Za-z0-9_.-]{1,128}\Z")
#: API Gateway connection ids are base64-like; the predecessor's alphabet plus ``+``/``/``.
CONNECTION_ID_RE = re.compile(r"\A[A-Za-z0-9_=+/-]{1,128}\Z")
API_NAME_RE = re.compile(r"\A[ A-Za-z0-9_-]{1,128}\Z")
API_ID_RE = re.compile(r"\A[a-z0-9]{1,32}\Z")
STAGE_NAME_RE = re.compile(r"\A[A-Za-z0-9_-]{1,63}\Z")
TOKEN_RE = re.compile(r"\A[a-f0-9]{64}\Z")
ROUTE_KEY_RE = re.compile(r"\A[^$\s][^\s]{0,63}\Z")
DOMAIN_NAME_RE = re.compile(
    r"\A(?=.{1,253}\Z)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\Z"
)


def is_valid_channel_name(value: object) -> bool:
    return isinstance(value, str) and CHANNEL_NAME_RE.fullmatch(value) is not None


def is_valid_connection_id(value: object) -> bool:
    return isinstance(value, str) and CONNECTION_ID_RE.fullmatch(value) is not None


def _regex(pattern: re.Pattern[str], message: StrOrPromise) -> RegexValidator:
    return RegexValidator(regex=pattern, message=message, code="invalid")


validate_channel_name = _regex(
    CHANNEL_NAME_RE, _("1-128 characters: letters, digits, '_', '-' or '.'.")
)
validate_connection_id = _regex(
    CONNECTION_ID_RE, _("1-128 characters: letters, digits, '_', '-', '=', '+' or '/'.")
)
validate_api_name = _regex(API_NAME_RE, _("Letters, digits, spaces, '_' or '-'."))
validate_stage_name = _regex(STAGE_NAME_RE, _("1-63 characters: letters, digits, '_' or '-'."))
validate_token = _regex(TOKEN_RE, _("64 lowercase hexadecimal characters."))
validate_route_key = _regex(
    ROUTE_KEY_RE, _("1-64 characters without spaces; '$' routes are managed automatically.")
)
validate_domain_name = _regex(DOMAIN_NAME_RE, _("A fully qualified DNS name, e.g. ws.example.com."))


def validate_api_id(value: str) -> None:
    """Empty is allowed (not provisioned yet); otherwise API Gateway's lowercase id alphabet."""
    if value and API_ID_RE.fullmatch(value) is None:
        raise ValidationError(_("An API id is 1-32 lowercase letters and digits."), code="invalid")
