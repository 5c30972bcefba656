"""What one send or close will do, validated in full before anything is read or sent.

A DELETE that has left cannot be taken back, and a broadcast that fails half-way has already
posted to half the recipients; so every argument of a public send or close method is checked
here, first, with a clear ``ValueError`` / ``TypeError`` (a close reason longer than the
``disconnect_reason`` column, a concurrency of ``0``, a ``timeout`` of ``"5"``, a message that is
not encodable or over 128 KiB).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from django.db import models

from aws_ws_async.conf import get_settings
from aws_ws_async.delivery import DeliveryPolicy, DeliveryReport, Engine, Failure, encode_payload
from aws_ws_async.delivery.report import FailureReason
from aws_ws_async.exceptions import PayloadTooLarge

if TYPE_CHECKING:
    from aws_ws_async.delivery.engine import Recipients

#: ``progress(report_so_far)``, called after each database chunk on both twins.
ProgressFn = Callable[[DeliveryReport], None]

#: ``disconnect_reason`` written on rows a broadcast found gone (``DisconnectReason.GONE``).
GONE = "gone"


@dataclass(frozen=True, slots=True)
class Operation:
    """The few points where a broadcast (POST) and a server-side close (DELETE) differ."""

    #: Name in the summary log line: ``broadcast`` or ``disconnect``.
    name: str
    #: ``operation`` sent with ``broadcast_finished``: ``send`` or ``disconnect``.
    signal: str
    #: ``disconnect_reason`` written on the rows this operation marks.
    reason: str
    #: The encoded message; None for a DELETE.
    payload: bytes | None = None

    @property
    def closes(self) -> bool:
        return self.payload is None

    @property
    def mark_grace(self) -> float:
        """Seconds a fresh row is spared a *gone* mark (posts only: see models/marks.py)."""
        return 0.0 if self.payload is None else get_settings().gone_grace_seconds

    async def deliver(self, engine: Engine, recipients: Recipients) -> DeliveryReport:
        if self.payload is None:
            return await engine.delete(recipients)
        return await engine.post(recipients, self.payload)

    def unreachable(self, ids: list[str], gateway_id: int | None) -> DeliveryReport:
        """No endpoint: a post fails, while a close has no connection left to close (gone)."""
        if self.payload is None:
            return DeliveryReport(gone=list(ids))
        if gateway_id is None:
            reason, detail = FailureReason.NO_GATEWAY, "session has no api_gateway"
        else:
            reason = FailureReason.GATEWAY_NOT_PROVISIONED
            detail = f"gateway {gateway_id} has no api_id or stage"
        return DeliveryReport(failed=[Failure(cid, reason, None, detail, 0) for cid in ids])

    def to_mark(self, report: DeliveryReport) -> list[str]:
        """Ids whose rows end disconnected: a close marks what it closed, not only the gone."""
        return report.delivered + report.gone if self.closes else report.gone


def send_operation(data: Any) -> Operation:
    """A broadcast of ``data``; refuses what cannot be encoded or is over 128 KiB."""
    try:
        payload = encode_payload(data)
    except PayloadTooLarge:
        raise
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"cannot send {type(data).__name__}: send a dict, list, str or bytes ({exc})"
        ) from exc
    return Operation("broadcast", "send", GONE, payload)


def close_operation(model: type[models.Model], reason: Any) -> Operation:
    """A server-side close writing ``reason``; it must fit the ``disconnect_reason`` column."""
    if not isinstance(reason, str) or not reason:
        raise TypeError(f"reason must be a non-empty str, not {reason!r}")
    field = model._meta.get_field("disconnect_reason")
    limit = getattr(field, "max_length", None) or 0
    if len(reason) > limit:
        raise ValueError(
            f"reason {reason!r} is {len(reason)} characters; disconnect_reason holds at most "
            f"{limit} (use a DisconnectReason value)"
        )
    return Operation("disconnect", "disconnect", reason)


# --- argument checks -----------------------------------------------------------------------


def _count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int or None, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


def _seconds(name: str, value: Any, *, allow_zero: bool) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number of seconds > 0, not {value!r}")
    return float(value)


def check_timeout(timeout: Any) -> float | None:
    """``timeout``: None (no deadline) or seconds > 0 for the whole call."""
    return _seconds("timeout", timeout, allow_zero=False)


def check_progress(progress: Any) -> ProgressFn | None:
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable or None, not {progress!r}")
    return progress  # type: ignore[no-any-return]


def check_queryset(queryset: models.QuerySet[Any]) -> None:
    """Keyset paging filters the queryset: a sliced one cannot be (say so before sending)."""
    if queryset.query.is_sliced:
        raise TypeError(
            "cannot send to a sliced queryset; select the rows with filter() (or "
            "filter(pk__in=[...])) instead"
        )


def delivery_policy(
    *,
    concurrency: Any = None,
    gone_retry_seconds: Any = 0.0,
    collect_delivered: Any = True,
) -> DeliveryPolicy:
    """The engine policy from ``settings.AWS_WS_ASYNC`` plus checked per-call overrides."""
    s = get_settings()
    bound = _count("concurrency", concurrency)
    gone = _seconds("gone_retry_seconds", gone_retry_seconds, allow_zero=True) or 0.0
    if not isinstance(collect_delivered, bool):
        raise TypeError(f"collect_delivered must be a bool, not {collect_delivered!r}")
    return DeliveryPolicy(
        max_concurrency=bound or s.max_concurrency,
        max_throttle_retries=s.max_throttle_retries,
        max_transient_retries=s.max_transient_retries,
        backoff_base_seconds=s.backoff_base_seconds,
        backoff_max_seconds=s.backoff_max_seconds,
        gone_retry_seconds=gone,
        collect_delivered=collect_delivered,
        attempt_timeout_seconds=s.attempt_timeout_seconds,
    )


@dataclass(frozen=True, slots=True)
class BulkCall:
    """Everything a QuerySet-level send or close was asked to do, checked."""

    op: Operation
    policy: DeliveryPolicy
    chunk: int
    timeout: float | None
    progress: ProgressFn | None


def bulk_call(
    queryset: models.QuerySet[Any],
    op: Operation,
    *,
    concurrency: Any,
    db_chunk_size: Any,
    timeout: Any,
    progress: Any,
    collect_delivered: Any = True,
) -> BulkCall:
    """Check every argument of a QuerySet-level call (both twins use this)."""
    check_queryset(queryset)
    return BulkCall(
        op=op,
        policy=delivery_policy(concurrency=concurrency, collect_delivered=collect_delivered),
        chunk=_count("db_chunk_size", db_chunk_size) or get_settings().db_chunk_size,
        timeout=check_timeout(timeout),
        progress=check_progress(progress),
    )


def single_policy(gone_retry_seconds: Any = 0.0) -> DeliveryPolicy:
    """One connection: one slot, the same retries."""
    return replace(delivery_policy(gone_retry_seconds=gone_retry_seconds), max_concurrency=1)
