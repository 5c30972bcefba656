"""A local API Gateway WebSocket emulator: WebSocket clients on one side, an HTTP backend on the
other, and the ``@connections`` API on the same port. It knows nothing about Django.

Quick start (async)::

    from aws_ws_async.emulator import EmulatorConfig, GatewayEmulator

    async with GatewayEmulator(EmulatorConfig("http://127.0.0.1:8000/ws/")) as gateway:
        print(gateway.url, gateway.management_url)

From sync code, :class:`EmulatorThread` runs one on its own loop; ``runwsgateway`` runs one from
an ``ApiGateway`` row. See ``docs/emulator.md``.
"""

from __future__ import annotations

from aws_ws_async.emulator.config import EmulatorConfig, Faults, Limits
from aws_ws_async.emulator.integration import IntegrationCall
from aws_ws_async.emulator.server import EmulatorThread, GatewayEmulator

__all__ = [
    "EmulatorConfig",
    "EmulatorThread",
    "Faults",
    "GatewayEmulator",
    "IntegrationCall",
    "Limits",
]
