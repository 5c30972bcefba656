"""Provisioning engine: create and synchronise API Gateway WebSocket APIs (async, no Django).

The engine takes plain values (a :class:`GatewaySpec` built with :func:`build_spec`, and a
:class:`GatewayState` of what earlier runs created) and reports every finished step to a
:class:`StepRecorder`. The public entry points are the ``ApiGateway`` model methods
(``acreate_gateway``, ``apush_to_aws``... and their sync twins): the gateway aggregate in
``aws_ws_async.models`` claims the row, builds the spec, persists the steps and pushes after
commit; these functions do the AWS side.
"""

from __future__ import annotations

from aws_ws_async.provisioning.create import acreate_api
from aws_ws_async.provisioning.domain import acreate_domain
from aws_ws_async.provisioning.drift import Difference
from aws_ws_async.provisioning.errors import describe_error
from aws_ws_async.provisioning.pull import Pulled, PulledRoute, apull
from aws_ws_async.provisioning.push import adetect_drift, aplan_push, apush
from aws_ws_async.provisioning.recorder import GatewayState, Run, Step, StepRecorder
from aws_ws_async.provisioning.spec import GatewaySpec, RouteSpec, build_spec

__all__ = [
    "Difference",
    "GatewaySpec",
    "GatewayState",
    "Pulled",
    "PulledRoute",
    "RouteSpec",
    "Run",
    "Step",
    "StepRecorder",
    "acreate_api",
    "acreate_domain",
    "adetect_drift",
    "aplan_push",
    "apull",
    "apush",
    "build_spec",
    "describe_error",
]
