"""The AWS edge: resolution rules and one per-loop cache of sessions, clients and transports.

* :mod:`~aws_ws_async.aws.resolve`: region, credentials and endpoint resolution.
* :mod:`~aws_ws_async.aws.cache`: for each running event loop, one aioboto3 session per
  credentials, the clients made from it (``@connections`` for delivery, ``apigatewayv2`` /
  ``route53`` for provisioning), closed when the loop ends.
* :mod:`~aws_ws_async.aws.transports`: delivery transports from the ``transport`` setting,
  cached per endpoint in the same cache (``await aws.get_transport(endpoint_url, pool_size)``).
"""

from __future__ import annotations

from aws_ws_async.aws.cache import (
    MANAGEMENT_SERVICE,
    MAX_POOL_CONNECTIONS,
    ClientStats,
    aclose_clients,
    cached_session,
    client_stats,
    get_management_client,
    get_service_client,
    management_client_config,
    pool_size_for,
)
from aws_ws_async.aws.resolve import (
    DEFAULT_MANAGEMENT_ENDPOINT,
    client_config,
    credentials_key,
    make_session,
    management_endpoint,
    resolve_region,
)
from aws_ws_async.aws.transports import TRANSPORT_METHODS, get_transport, transport_factory

__all__ = [
    "DEFAULT_MANAGEMENT_ENDPOINT",
    "MANAGEMENT_SERVICE",
    "MAX_POOL_CONNECTIONS",
    "TRANSPORT_METHODS",
    "ClientStats",
    "aclose_clients",
    "cached_session",
    "client_config",
    "client_stats",
    "credentials_key",
    "get_management_client",
    "get_service_client",
    "get_transport",
    "make_session",
    "management_client_config",
    "management_endpoint",
    "pool_size_for",
    "resolve_region",
    "transport_factory",
]
