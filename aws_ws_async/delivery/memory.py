"""An in-memory transport: test your own broadcasting code with no server at all.

Point the ``transport`` setting at :class:`InMemoryTransport` (or pass one to
:func:`~aws_ws_async.delivery.deliver`); every post and delete is recorded in a
:class:`Network`, the module-level :data:`network` by default (Django's ``mail.outbox``
pattern), and connections answer as scripted::

    from aws_ws_async.delivery.memory import network

    network.reset()
    network.script("gone-id=", "gone")            # 410: the row ends disconnected
    network.script("busy-id=", "throttle", times=2)  # 429 twice, then delivered
    report = WebSocketSession.objects.subscribed_to("room").send_message({"hi": 1})
    assert network.posts_to("ok-id=") == [b'{"hi":1}']

Outcomes: ``gone`` (410), ``throttle`` (429), ``5xx`` (503), ``timeout`` (no answer), and
``forbidden`` (403). Django-free, like the rest of :mod:`aws_ws_async.delivery`.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from aws_ws_async.delivery.transport import OK, BaseTransport, Outcome, TransportError

#: Scripted outcome name -> what the fake API Gateway answers.
OUTCOMES: dict[str, Outcome | None] = {
    "gone": Outcome(410, "GoneException", "Gone"),
    "throttle": Outcome(429, "LimitExceededException", "Rate exceeded"),
    "5xx": Outcome(503, "ServiceUnavailableException", "Service unavailable"),
    "forbidden": Outcome(403, "ForbiddenException", "Forbidden"),
    "timeout": None,  # raises TransportError("timeout", ...)
}


@dataclass(frozen=True, slots=True)
class Call:
    """One recorded request."""

    method: str
    endpoint_url: str
    connection_id: str
    data: bytes | None


@dataclass
class Network:
    """What every in-memory transport sharing it saw, and the scripted answers (thread-safe)."""

    #: Every request, whatever the answer.
    calls: list[Call] = field(default_factory=list)
    #: Requests answered with success (200 / 204).
    answered: list[Call] = field(default_factory=list)
    _queued: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _forever: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        """Forget every call and script (call it at the start of each test)."""
        with self._lock:
            self.calls.clear()
            self.answered.clear()
            self._queued.clear()
            self._forever.clear()

    def script(self, connection_id: str, outcome: str, *, times: int | None = None) -> None:
        """Answer ``connection_id`` with ``outcome`` the next ``times`` times (always if None).

        Queued answers come first; after them an "always" answer, else success.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}: one of {sorted(OUTCOMES)}")
        if times is not None and (
            isinstance(times, bool) or not isinstance(times, int) or times < 1
        ):
            raise ValueError(f"times must be a positive int or None, not {times!r}")
        with self._lock:
            if times is None:
                self._forever[connection_id] = outcome
            else:
                self._queued[connection_id].extend([outcome] * times)

    def _record(self, call: Call) -> str | None:
        """Record ``call``; the scripted outcome name, or None for success."""
        with self._lock:
            self.calls.append(call)
            queue = self._queued.get(call.connection_id)
            scripted = queue.pop(0) if queue else self._forever.get(call.connection_id)
            if scripted is None:
                self.answered.append(call)
            return scripted

    @property
    def posts(self) -> list[Call]:
        """Every POST, answered or not."""
        return [c for c in self.calls if c.method == "POST"]

    @property
    def deletes(self) -> list[Call]:
        """Every DELETE, answered or not."""
        return [c for c in self.calls if c.method == "DELETE"]

    @property
    def gets(self) -> list[Call]:
        """Every GET (the reaper's probes), answered or not."""
        return [c for c in self.calls if c.method == "GET"]

    def posts_to(self, connection_id: str) -> list[bytes]:
        """Bodies delivered (200) to ``connection_id``, in order."""
        with self._lock:
            return [
                c.data or b""
                for c in self.answered
                if c.method == "POST" and c.connection_id == connection_id
            ]

    def deleted(self) -> list[str]:
        """Connection ids closed successfully (204), in order."""
        with self._lock:
            return [c.connection_id for c in self.answered if c.method == "DELETE"]


#: The network transports use unless given one.
network = Network()


def _default_network() -> Network:
    return network


class InMemoryTransport(BaseTransport):
    """A transport that records calls in a :class:`Network` and answers as scripted.

    Accepts the arguments the ``transport`` setting's factory is called with
    (``endpoint_url``, ``pool_size``), so the dotted path alone configures it.
    """

    def __init__(
        self,
        endpoint_url: str = "memory://connections",
        *,
        pool_size: int | None = None,
        network: Network | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.network = network if network is not None else _default_network()
        self.closed = False

    async def post(self, connection_id: str, data: bytes) -> Outcome:
        return self._answer(Call("POST", self.endpoint_url, connection_id, bytes(data)), OK)

    async def delete(self, connection_id: str) -> Outcome:
        return self._answer(Call("DELETE", self.endpoint_url, connection_id, None), Outcome(204))

    async def get(self, connection_id: str) -> Outcome:
        """A probe: answered 200 (open) unless scripted (``gone``: 410)."""
        return self._answer(Call("GET", self.endpoint_url, connection_id, None), OK)

    def _answer(self, call: Call, ok: Outcome) -> Outcome:
        if self.closed:
            raise RuntimeError("this InMemoryTransport is closed")
        scripted = self.network._record(call)
        if scripted is None:
            return ok
        outcome = OUTCOMES[scripted]
        if outcome is None:
            raise TransportError("timeout", f"{call.method} {call.connection_id}: scripted")
        return outcome

    async def aclose(self) -> None:
        self.closed = True
