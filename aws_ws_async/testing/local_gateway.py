"""Development helpers: the local ``ApiGateway`` row and a login without a form.

The local row lets a project's ``$connect`` accept the emulator.
``$connect`` accepts only API ids it knows (a row with that ``api_id``), so the emulator's
requests need a row even though nothing exists on AWS. ``runwsgateway --create-gateway`` and the
:mod:`aws_ws_async.testing` client share this one way of creating (or reusing) it, so a local
row is always saved without a push to AWS and always points at the emulator.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

from aws_ws_async.models import ApiGateway

#: The api id ``--create-gateway`` uses when none is given.
DEFAULT_LOCAL_API_ID = "localdev"


def ensure_local_gateway(
    api_id: str,
    *,
    target_base_endpoint: str,
    stage: str = "local",
    api_endpoint: str = "",
) -> tuple[ApiGateway, bool]:
    """``(row, created)``: the row with this api id, created or updated to match.

    An existing row keeps everything else (routes, channel defaults); only the fields the
    emulator depends on are set, and the save never pushes to AWS (the row is local).
    """
    row = ApiGateway.objects.filter(api_id=api_id).first()
    created = row is None
    if row is None:
        name = f"Local {api_id}"
        suffix = 1
        while ApiGateway.objects.filter(api_name=name).exists():
            suffix += 1
            name = f"Local {api_id} {suffix}"
        row = ApiGateway(api_name=name, api_id=api_id)
    row.stage_name = stage
    row.target_base_endpoint = target_base_endpoint
    if api_endpoint:
        row.api_endpoint = api_endpoint
    row.full_clean(exclude=["api_name"] if not created else None)
    row.save(push_to_aws=False)
    return row, created


def login_session(user: Any, backend: str | None = None) -> str:
    """A new saved Django session authenticating ``user``, as ``login()`` stores it; its key.

    ``$connect`` spends a token only while the session it is bound to still authenticates the
    user (auth hash included), so scripts and test clients need a real session, not a fake.
    """
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = user._meta.pk.value_to_string(user)
    store[BACKEND_SESSION_KEY] = backend or settings.AUTHENTICATION_BACKENDS[0]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return str(store.session_key)
