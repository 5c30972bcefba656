"""The transport interface: "post these bytes to this connection, tell me the HTTP status".

The engine only ever sees :class:`Outcome` values and :class:`TransportError`; anything that can
produce those (aiobotocore, a signed aiohttp client, :class:`~aws_ws_async.delivery.memory.
InMemoryTransport`) can carry a broadcast. Like httpx's transports, a transport has a lifecycle:
``aclose()`` releases what it owns, and ``async with transport:`` calls it on exit.
:class:`BaseTransport` supplies both for implementations that own nothing to close.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, runtime_checkable


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the ``@connections`` API answered.

    ``error_code`` is the ``x-amzn-errortype`` value (or botocore's resolved code), empty when
    the response carried none; classification never depends on it alone.
    """

    status: int
    error_code: str = ""
    message: str = ""


OK = Outcome(200)


class TransportError(Exception):
    """No HTTP answer at all: ``kind`` is ``"timeout"`` or ``"connection"`` (both retryable)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@runtime_checkable
class Transport(Protocol):
    """One ``@connections`` endpoint (one API and stage)."""

    #: Where posts go; used in logs and to group engines.
    endpoint_url: str

    async def post(self, connection_id: str, data: bytes) -> Outcome:
        """``POST @connections/{id}``; raise :class:`TransportError` if no response arrived."""
        ...

    async def delete(self, connection_id: str) -> Outcome:
        """``DELETE @connections/{id}`` (server-side close)."""
        ...

    async def get(self, connection_id: str) -> Outcome:
        """``GET @connections/{id}``: 200 while the connection is open, 410 once it is gone.

        The reaper's probe (:meth:`~aws_ws_async.delivery.Engine.probe`); the body (connection
        info) is not needed and not returned.
        """
        ...

    async def aclose(self) -> None:
        """Release what this transport owns (idempotent). Shared clients stay open."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BaseTransport:
    """Lifecycle defaults: ``aclose()`` does nothing; ``async with`` closes on exit."""

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
