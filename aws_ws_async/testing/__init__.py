"""Test helpers for projects using aws_ws_async (importable from your own tests).

:class:`FaultEndpoint` is a loopback ``@connections`` API that records posts and injects
faults; point ``AWS_WS_ASYNC["management_endpoint_url"]`` at its ``url``.
:class:`WebSocketTestClient` logs in, fetches a token and talks JSON through the emulator
(fixture ``ws_client`` in :mod:`aws_ws_async.testing.pytest_plugin`, see docs/emulator.md).
:class:`InMemoryTransport` needs no server at all: set ``AWS_WS_ASYNC["transport"]`` to
``"aws_ws_async.testing.InMemoryTransport"`` and read :data:`network` (see docs/transports.md).
"""

from aws_ws_async.delivery.memory import InMemoryTransport, Network, network
from aws_ws_async.testing.client import (
    ConnectionClosed,
    ConnectRefused,
    LoginFailed,
    TokenRefused,
    WebSocketClientError,
    WebSocketTestClient,
)
from aws_ws_async.testing.fault_endpoint import FaultEndpoint, FaultPlan
from aws_ws_async.testing.responses import ERRORS, error_response, ok_response

__all__ = [
    "ERRORS",
    "ConnectRefused",
    "ConnectionClosed",
    "FaultEndpoint",
    "FaultPlan",
    "InMemoryTransport",
    "LoginFailed",
    "Network",
    "TokenRefused",
    "WebSocketClientError",
    "WebSocketTestClient",
    "error_response",
    "network",
    "ok_response",
]
