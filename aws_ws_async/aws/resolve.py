"""Region, credentials and endpoint resolution: the rules every AWS client of ours follows.

Resolution order, the same for every service:

* region: ``AWS_WS_ASYNC["region_name"]`` (or the legacy ``AWS_GATEWAY_REGION_NAME`` /
  ``AWS_REGION_NAME``), else the standard AWS chain (``AWS_DEFAULT_REGION``, the profile's
  config). A profile never discards an explicit region (the predecessor's defect).
* credentials: an explicit key pair if both halves are set, else the named profile, else the
  default credential chain (environment, shared files, container/instance roles).
"""

from __future__ import annotations

import hashlib
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig

from aws_ws_async.conf import AppSettings, get_settings
from aws_ws_async.exceptions import ImproperlyConfiguredGateway

DEFAULT_MANAGEMENT_ENDPOINT = "https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"


def make_session(app_settings: AppSettings | None = None) -> aioboto3.Session:
    """A new aioboto3 session honouring our settings (cheap; clients are the costly part)."""
    s = app_settings or get_settings()
    kwargs: dict[str, Any] = {}
    if s.region_name:
        kwargs["region_name"] = s.region_name
    if s.access_key_id and s.secret_access_key:
        kwargs["aws_access_key_id"] = s.access_key_id
        kwargs["aws_secret_access_key"] = s.secret_access_key
        if s.session_token:
            kwargs["aws_session_token"] = s.session_token
    elif s.profile_name:
        kwargs["profile_name"] = s.profile_name
    return aioboto3.Session(**kwargs)


def resolve_region(session: aioboto3.Session | None = None) -> str:
    """The effective region, or a clear error naming the settings that would provide one."""
    region = (session or make_session()).region_name
    if not region:
        raise ImproperlyConfiguredGateway(
            "No AWS region: set AWS_WS_ASYNC['region_name'] (or AWS_DEFAULT_REGION, or a "
            "region in your AWS profile)."
        )
    return str(region)


def management_endpoint(api_id: str, stage: str, region: str | None = None) -> str:
    """The ``@connections`` endpoint URL for one API and stage (no trailing slash)."""
    if not api_id:
        raise ImproperlyConfiguredGateway("The gateway has no api_id: provision it first.")
    if not stage:
        raise ImproperlyConfiguredGateway("The gateway has no stage_name.")
    template = get_settings().management_endpoint_url or DEFAULT_MANAGEMENT_ENDPOINT
    if "{region}" in template and region is None:
        region = resolve_region()
    return template.format(api_id=api_id, region=region or "", stage=stage).rstrip("/")


def client_config(**overrides: Any) -> AioConfig:
    """Client configuration from our settings; ``overrides`` win (e.g. ``retries``)."""
    s = get_settings()
    options: dict[str, Any] = {
        "connect_timeout": s.connect_timeout_seconds,
        "read_timeout": s.read_timeout_seconds,
        "retries": {"mode": "standard", "max_attempts": 3},
    }
    options.update(overrides)
    return AioConfig(**options)


def credentials_key(app_settings: AppSettings | None = None) -> tuple[Any, ...]:
    """What distinguishes one set of credentials from another, without keeping secrets around."""
    s = app_settings or get_settings()

    def digest(value: str | None) -> str:
        return hashlib.sha256(value.encode()).hexdigest()[:16] if value else ""

    return (
        s.region_name or "",
        s.profile_name or "",
        s.access_key_id or "",
        digest(s.secret_access_key),
        digest(s.session_token),
    )
