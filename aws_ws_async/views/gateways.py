"""A per-process cache of gateways looked up by API id, for ``$connect``.

Every ``$connect`` names its API in ``X-Amzn-Apigateway-Api-Id``; gateways change rarely, so the
row is cached for ``gateway_cache_seconds``. Saving or deleting a gateway clears the cache of
this process at once (other processes pick up the change when their entry expires). Unknown
ids are cached only briefly (``NEGATIVE_TTL``) so a newly provisioned API is found quickly, and
the cache is bounded so random ids sent by a scanner cannot grow it without limit.
"""

from __future__ import annotations

import time
from typing import Any

from django.db.models.signals import post_delete, post_save

from aws_ws_async.conf import get_settings
from aws_ws_async.models import ApiGateway
from aws_ws_async.validators import API_ID_RE

#: Seconds an unknown API id is remembered as unknown.
NEGATIVE_TTL = 5.0
#: Entries kept at most; the cache is emptied when full (cheap, and rare in practice).
MAX_ENTRIES = 1024

_cache: dict[str, tuple[float, ApiGateway | None]] = {}


def clear_gateway_cache(**_kwargs: Any) -> None:
    """Forget every cached gateway (signal receiver, also handy in tests)."""
    _cache.clear()


def cached_gateway(api_id: str) -> tuple[bool, ApiGateway | None]:
    """``(hit, gateway)`` from the cache without touching the database."""
    entry = _cache.get(api_id)
    if entry is None:
        return False, None
    expires, gateway = entry
    if expires <= time.monotonic():
        _cache.pop(api_id, None)
        return False, None
    return True, gateway


async def aget_gateway(api_id: str | None) -> ApiGateway | None:
    """The provisioned gateway with this API id, or None (empty or malformed ids never match).

    The empty id is refused before any query: unprovisioned rows have ``api_id=""`` and must
    never be selected by a request that simply omits the header.
    """
    if not api_id or API_ID_RE.fullmatch(api_id) is None:
        return None
    ttl = get_settings().gateway_cache_seconds
    if ttl:
        hit, gateway = cached_gateway(api_id)
        if hit:
            return gateway
    gateway = await ApiGateway.objects.filter(api_id=api_id).afirst()
    if ttl:
        if len(_cache) >= MAX_ENTRIES:
            _cache.clear()
        lifetime = ttl if gateway is not None else min(NEGATIVE_TTL, ttl)
        _cache[api_id] = (time.monotonic() + lifetime, gateway)
    return gateway


post_save.connect(clear_gateway_cache, sender=ApiGateway, dispatch_uid="aws_ws_async.gw_cache_save")
post_delete.connect(
    clear_gateway_cache, sender=ApiGateway, dispatch_uid="aws_ws_async.gw_cache_delete"
)
