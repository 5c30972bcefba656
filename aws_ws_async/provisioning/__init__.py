"""Provisioning engine: create and synchronise API Gateway WebSocket APIs (async first).

The public entry points are the model methods (``ApiGateway.acreate_gateway`` and their sync
twins); these functions are what they call.
"""

from __future__ import annotations

from aws_ws_async.provisioning.create import acreate_gateway
from aws_ws_async.provisioning.domain import acreate_custom_domain
from aws_ws_async.provisioning.drift import Difference
from aws_ws_async.provisioning.pull import apull
from aws_ws_async.provisioning.push import adetect_drift, apush, arotate_secret

__all__ = [
    "Difference",
    "acreate_custom_domain",
    "acreate_gateway",
    "adetect_drift",
    "apull",
    "apush",
    "arotate_secret",
]
