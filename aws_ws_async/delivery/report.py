"""The result of a delivery: who got the message, who is gone, who failed and why.

Failure reasons are the documented :class:`FailureReason` constants (a ``StrEnum``, so they
compare equal to their plain string values and stay JSON-friendly).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from aws_ws_async.exceptions import DeliveryFailed


class FailureReason(enum.StrEnum):
    """Why one connection could not be reached (``Failure.reason``)."""

    #: 403 from ``@connections`` (wrong credentials or IAM policy).
    FORBIDDEN = "forbidden"
    #: 413: the message is larger than API Gateway accepts.
    PAYLOAD_TOO_LARGE = "payload_too_large"
    #: 400 and any other 4xx that is not retried.
    BAD_REQUEST = "bad_request"
    #: 429 after every throttle retry.
    THROTTLED = "throttled"
    #: 5xx after every transient retry.
    SERVER_ERROR = "server_error"
    #: No answer within the attempt deadline, after every transient retry.
    TIMEOUT = "timeout"
    #: Connection refused or reset, after every transient retry.
    CONNECTION_ERROR = "connection_error"
    #: The session has no ``api_gateway``: nothing to send through.
    NO_GATEWAY = "no_gateway"
    #: The session's gateway has no ``api_id`` or stage (never provisioned).
    GATEWAY_NOT_PROVISIONED = "gateway_not_provisioned"
    #: The post was in flight when the broadcast stopped (aborted or past its ``timeout``);
    #: it may or may not have arrived.
    CANCELLED = "cancelled"
    #: An unexpected exception (a bug): its type and message are in ``detail``.
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Failure:
    """One connection that could not be reached, with a short machine-readable ``reason``.

    ``reason`` is one of :class:`FailureReason` (compare with ``FailureReason.FORBIDDEN`` or
    with the plain string ``"forbidden"``: both work).
    """

    connection_id: str
    reason: str
    status: int | None = None
    detail: str = ""
    attempts: int = 1


@dataclass(slots=True)
class DeliveryReport:
    """Every recipient ends up in exactly one of ``delivered``, ``gone`` or ``failed``.

    ``delivered`` lists ids only when the caller asked for them (``collect_delivered``), so a
    broadcast to millions can keep memory flat; ``delivered_count`` is always right.
    """

    delivered: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    delivered_count: int = 0
    #: Extra attempts made (429, 5xx, timeouts, connection errors, 410 during a gone window).
    retries: int = 0
    #: How many responses were 429.
    throttled: int = 0
    duration: float = 0.0
    #: Concurrency bound at the start and the lowest it was lowered to by throttling.
    concurrency: int = 0
    lowest_concurrency: int = 0

    @property
    def gone_count(self) -> int:
        return len(self.gone)

    @property
    def failed_count(self) -> int:
        return len(self.failed)

    @property
    def total(self) -> int:
        return self.delivered_count + len(self.gone) + len(self.failed)

    @property
    def ok(self) -> bool:
        """True when nothing failed (gone connections are expected, not failures)."""
        return not self.failed

    def raise_for_failures(self) -> DeliveryReport:
        """Raise :class:`~aws_ws_async.exceptions.DeliveryFailed` if anything failed.

        For callers who prefer an exception to inspecting the report (the predecessor raised).
        Gone connections are not failures. Returns the report itself when nothing failed, so
        ``report = (await qs.asend_message(data)).raise_for_failures()`` reads naturally.
        """
        if self.failed:
            raise DeliveryFailed(self)
        return self

    def merge(self, other: DeliveryReport) -> None:
        """Fold another report (another gateway, another chunk) into this one."""
        self.delivered.extend(other.delivered)
        self.gone.extend(other.gone)
        self.failed.extend(other.failed)
        self.delivered_count += other.delivered_count
        self.retries += other.retries
        self.throttled += other.throttled
        self.concurrency = max(self.concurrency, other.concurrency)
        lows = [c for c in (self.lowest_concurrency, other.lowest_concurrency) if c]
        self.lowest_concurrency = min(lows) if lows else 0

    def summary(self) -> str:
        """One line for logs and the management command."""
        rate = self.total / self.duration if self.duration > 0 else 0.0
        reasons: dict[str, int] = {}
        for failure in self.failed:
            reasons[failure.reason] = reasons.get(failure.reason, 0) + 1
        failed = ", ".join(f"{k}={v}" for k, v in sorted(reasons.items()))
        return (
            f"{self.total} recipients in {self.duration:.2f}s ({rate:.0f}/s): "
            f"{self.delivered_count} delivered, {len(self.gone)} gone, "
            f"{len(self.failed)} failed{f' ({failed})' if failed else ''}, "
            f"{self.retries} retries, {self.throttled} throttled, "
            f"concurrency {self.concurrency} (lowest {self.lowest_concurrency})"
        )
