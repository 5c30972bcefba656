"""Plain configuration of the emulator: no Django, so tests, users and the demo share it.

The ``runwsgateway`` management command builds an :class:`EmulatorConfig` from an ``ApiGateway``
row (or from flags); tests build one directly. Defaults are API Gateway's own values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

#: API Gateway's limits (AWS docs, "Quotas for configuring and running a WebSocket API").
IDLE_TIMEOUT_SECONDS = 10 * 60
MAX_CONNECTION_AGE_SECONDS = 2 * 60 * 60
MAX_MESSAGE_BYTES = 128 * 1024
MAX_FRAME_BYTES = 32 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29.0
#: The emulator's own bounds (API Gateway documents none of these; see docs/emulator.md).
MAX_IN_FLIGHT_PER_CONNECTION = 10
MAX_QUEUED_PER_CONNECTION = 1000
MAX_QUEUED_BYTES_PER_CONNECTION = 4 * 1024 * 1024
MESSAGE_POOL_SIZE = 100
LIFECYCLE_POOL_SIZE = 100
#: How long ``stop()`` (Ctrl-C, SIGTERM) lets closes and posts finish before cancelling them.
SHUTDOWN_GRACE_SECONDS = 5.0

_API_ID_RE = re.compile(r"\A[a-z0-9]{1,32}\Z")
_STAGE_RE = re.compile(r"\A[A-Za-z0-9_-]{1,63}\Z")
_HEADER_RE = re.compile(r"\A[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


def _check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{name} must be an http:// or https:// URL, not {url!r}")


@dataclass(frozen=True)
class Limits:
    """API Gateway's limits; tests shrink them to exercise the timeouts in milliseconds."""

    idle_timeout: float = IDLE_TIMEOUT_SECONDS
    max_connection_age: float = MAX_CONNECTION_AGE_SECONDS
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_frame_bytes: int = MAX_FRAME_BYTES
    integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS
    #: Bytes waiting to be written to one client before ``@connections`` posts to it get 429.
    #: API Gateway answers ``LimitExceededException`` when a client's buffer is full.
    max_client_buffer_bytes: int = 1024 * 1024
    #: Message posts of one connection that may wait for the backend at once ...
    max_in_flight_per_connection: int = MAX_IN_FLIGHT_PER_CONNECTION
    #: ... and frames (and their bytes) that may wait behind them; a frame beyond that is
    #: refused with a ``Too Many Requests`` error frame (the socket keeps being read, so a close
    #: is seen at once).
    max_queued_per_connection: int = MAX_QUEUED_PER_CONNECTION
    max_queued_bytes_per_connection: int = MAX_QUEUED_BYTES_PER_CONNECTION
    #: Backend connections shared by all message posts.
    message_pool_size: int = MESSAGE_POOL_SIZE
    #: Backend connections reserved for ``$connect`` and ``$disconnect``, so that neither ever
    #: queues behind message posts to a slow backend.
    lifecycle_pool_size: int = LIFECYCLE_POOL_SIZE
    #: AWS documents the idle timeout as "no messages in either direction", so ``@connections``
    #: posts reset it (the default). False: only the client's frames do, the stricter reading a
    #: client's keep-alive must survive, and the only way to test an idle close while the
    #: server is broadcasting to that connection.
    idle_resets_on_outbound: bool = True

    def __post_init__(self) -> None:
        for name in ("idle_timeout", "max_connection_age", "integration_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be > 0")
        for name in (
            "max_message_bytes",
            "max_frame_bytes",
            "max_client_buffer_bytes",
            "max_in_flight_per_connection",
            "max_queued_bytes_per_connection",
            "message_pool_size",
            "lifecycle_pool_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"Limits.{name} must be an int > 0, not {value!r}")
        queued = self.max_queued_per_connection
        if isinstance(queued, bool) or not isinstance(queued, int) or queued < 0:
            raise ValueError(
                f"Limits.max_queued_per_connection must be an int >= 0, not {queued!r}"
            )


@dataclass(frozen=True)
class Faults:
    """Fault injection for the ``@connections`` side, so delivery code meets real trouble."""

    #: Fraction (0..1) of ``@connections`` requests answered ``429 LimitExceededException``.
    throttle_rate: float = 0.0
    #: Seconds added before every ``@connections`` answer.
    latency: float = 0.0
    #: Fraction (0..1) of ``$disconnect`` integration calls silently not made (AWS: best-effort).
    disconnect_loss_rate: float = 0.0
    #: Seed of the random generator behind the rates, for reproducible runs.
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("throttle_rate", "disconnect_loss_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1, not {value!r}")
        if self.latency < 0:
            raise ValueError("Faults.latency must be >= 0")


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything the emulator needs to behave like one API Gateway WebSocket API and stage."""

    #: Base URL of the backend; ``$connect`` posts to ``<base>connect`` (like the integrations
    #: ``aws_ws_async`` provisions). A missing trailing slash is added.
    target_base_url: str
    api_id: str = "emulator"
    stage: str = "local"
    route_selection_expression: str = "$request.body.action"
    #: Custom route keys and the URL each one's integration posts to.
    additional_routes: Mapping[str, str] = field(default_factory=dict)
    #: Whether unmatched messages go to ``<base>default`` (the ``$default`` route exists).
    default_route: bool = True
    #: Send the backend's response body back to the sender (a ``$default`` route response).
    route_responses: bool = False
    gateway_secret: str | None = None
    gateway_secret_header: str = "X-Ws-Gateway-Secret"
    connection_id_header: str = "Connectionid"
    #: What API Gateway tells the backend about the client side; it always terminates TLS.
    forwarded_proto: str = "https"
    forwarded_port: str = "443"
    limits: Limits = field(default_factory=Limits)
    faults: Faults = field(default_factory=Faults)
    #: Seconds ``stop()`` waits, in all, for close handshakes, ``$disconnect`` posts and message
    #: posts in flight before it cancels what is left (keep it under a process manager's kill
    #: timeout: ``docker stop`` sends SIGKILL 10 s after SIGTERM).
    shutdown_grace: float = SHUTDOWN_GRACE_SECONDS

    def __post_init__(self) -> None:
        _check_url("target_base_url", self.target_base_url)
        grace = self.shutdown_grace
        if isinstance(grace, bool) or not isinstance(grace, int | float) or not grace >= 0:
            raise ValueError(f"shutdown_grace must be a number of seconds >= 0, not {grace!r}")
        if not self.target_base_url.endswith("/"):
            object.__setattr__(self, "target_base_url", self.target_base_url + "/")
        if not _API_ID_RE.fullmatch(self.api_id):
            raise ValueError(
                f"api_id must be 1-32 lowercase letters or digits, not {self.api_id!r}"
            )
        if not _STAGE_RE.fullmatch(self.stage):
            raise ValueError(f"stage must be 1-63 letters, digits, '_' or '-', not {self.stage!r}")
        if not self.route_selection_expression.strip():
            raise ValueError("route_selection_expression must not be empty")
        for name in ("gateway_secret_header", "connection_id_header"):
            if not _HEADER_RE.fullmatch(getattr(self, name)):
                raise ValueError(f"{name} is not a valid HTTP header name")
        routes = dict(self.additional_routes)
        for key, url in routes.items():
            if not key or key.startswith("$"):
                raise ValueError(f"additional route key {key!r} must be non-empty without '$'")
            _check_url(f"the URL of route {key!r}", url)
        object.__setattr__(self, "additional_routes", MappingProxyType(routes))

    @property
    def user_agent(self) -> str:
        """The User-Agent API Gateway puts on integration requests."""
        return f"AmazonAPIGateway_{self.api_id}"

    def integration_url(self, route: str) -> str:
        """``<base>connect``, ``<base>disconnect``, ``<base>default``."""
        return f"{self.target_base_url}{route}"
