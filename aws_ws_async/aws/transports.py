"""Delivery transports from the ``transport`` setting, cached per loop with the clients.

This edge imports no engine: the factory is found by its dotted path and checked by duck
typing against the ``Transport`` protocol of :mod:`aws_ws_async.delivery.transport`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from aws_ws_async.aws.cache import _cache, get_management_client, pool_size_for
from aws_ws_async.aws.resolve import credentials_key
from aws_ws_async.conf import get_settings
from aws_ws_async.exceptions import ImproperlyConfiguredGateway

_factories: dict[str, Callable[..., Any]] = {}


def transport_factory(path: str | None = None) -> Callable[..., Any]:
    """The class or factory the ``transport`` setting names, imported once per path.

    A path that does not import, or names something that is not callable, is a clear
    :class:`~aws_ws_async.exceptions.ImproperlyConfiguredGateway` (a Django
    ``ImproperlyConfigured``).
    """
    path = path or get_settings().transport
    factory = _factories.get(path)
    if factory is not None:
        return factory
    module_name, _, name = path.rpartition(".")
    try:
        if not module_name:
            raise ImportError(f"{path!r} is not a dotted path")
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ImproperlyConfiguredGateway(
            f"AWS_WS_ASYNC['transport'] = {path!r} does not import: {exc}"
        ) from exc
    if not callable(found):
        raise ImproperlyConfiguredGateway(
            f"AWS_WS_ASYNC['transport'] = {path!r} is not a class or factory"
        )
    _factories[path] = found
    return found  # type: ignore[no-any-return]


#: What a transport must have (checked by duck typing: this edge imports no engine).
TRANSPORT_METHODS = ("post", "delete", "aclose", "__aenter__", "__aexit__")


async def get_transport(endpoint_url: str, pool_size: int | None = None) -> Any:
    """The running loop's cached transport for ``endpoint_url`` (the ``transport`` setting).

    ``pool_size`` is the concurrency the caller wants (rounded like :func:`pool_size_for`).
    A factory with a ``for_endpoint`` coroutine (the default ``AiobotocoreTransport``) gets
    the loop's cached client through it; any other is called as
    ``factory(endpoint_url, pool_size=...)`` and may return an awaitable. Cached per endpoint,
    credentials, pool, timeouts, transport path and ``fast_signing``; closed with the loop.
    """
    s = get_settings()
    pool = pool_size_for(pool_size)
    timeouts = (s.connect_timeout_seconds, s.read_timeout_seconds)
    key = (endpoint_url, credentials_key(s), pool, timeouts, s.transport, s.fast_signing)
    cache = _cache()
    transport = cache.transports.get(key)
    if transport is not None:
        return transport
    factory: Any = transport_factory(s.transport)
    if hasattr(factory, "for_endpoint"):
        made = await factory.for_endpoint(
            endpoint_url, pool_size=pool, fast=s.fast_signing, get_client=get_management_client
        )
    else:
        try:
            made = factory(endpoint_url, pool_size=pool)
        except TypeError as exc:
            raise ImproperlyConfiguredGateway(
                f"AWS_WS_ASYNC['transport'] = {s.transport!r} is not a Transport factory: "
                f"calling it as factory(endpoint_url, pool_size=...) failed: {exc}"
            ) from exc
        if inspect.isawaitable(made):
            made = await made
    missing = [n for n in TRANSPORT_METHODS if not callable(getattr(made, n, None))]
    if missing or not isinstance(getattr(made, "endpoint_url", None), str):
        raise ImproperlyConfiguredGateway(
            f"AWS_WS_ASYNC['transport'] = {s.transport!r} made a {type(made).__name__}, which "
            f"is not a Transport (missing: {', '.join(missing) or 'endpoint_url'})"
        )
    existing = cache.transports.get(key)  # another caller finished first while we awaited
    if existing is not None:
        if existing is not made:
            await made.aclose()
        return existing
    cache.transports[key] = made
    return made
