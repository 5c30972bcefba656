"""Test helpers for projects using aws_ws_async (importable from your own tests).

:class:`FaultEndpoint` is a loopback ``@connections`` API that records posts and injects
faults; point ``AWS_WS_ASYNC["management_endpoint_url"]`` at its ``url``.
:class:`InMemoryTransport` needs no server at all: set ``AWS_WS_ASYNC["transport"]`` to
``"aws_ws_async.testing.InMemoryTransport"`` and read :data:`network` (see docs/transports.md).
"""

from aws_ws_async.delivery.memory import InMemoryTransport, Network, network
from aws_ws_async.testing.fault_endpoint import FaultEndpoint, FaultPlan
from aws_ws_async.testing.responses import ERRORS, error_response, ok_response

__all__ = [
    "ERRORS",
    "FaultEndpoint",
    "FaultPlan",
    "InMemoryTransport",
    "Network",
    "error_response",
    "network",
    "ok_response",
]
