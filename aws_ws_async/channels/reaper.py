"""Confirm doubtful connections with ``GET @connections/{id}``, in bulk, through the engine.

A session is *doubtful* when its row says connected but nothing was heard from it for a while
(``last_seen_at`` older than ``idle``): its ``$disconnect`` may have been lost (API Gateway
delivers it at most once, and not at all when the backend was down), so it would still count in
presence and still be posted to. The stale rule (``clear_websocket_sessions --stale``) only
marks rows API Gateway has *certainly* closed (2 hours old, or 10 minutes idle plus slack); the
reaper asks API Gateway about the ones in between.

The probe is an ordinary bulk operation of :mod:`aws_ws_async.models.sending`: rows streamed by
keyset pages per gateway, one engine per gateway (bounded concurrency, the shared
:class:`~aws_ws_async.delivery.AdaptiveLimiter`, the cluster-wide rate budget of the
endpoint, 429/5xx retries), and the ids answered 410 marked ``gone`` in background batches while
the probes run. A 200 leaves the row alone: ``last_seen_at`` is not touched, because a probe
says the socket is open, not that the client is active (API Gateway's idle timer decides that).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from aws_ws_async.delivery import DeliveryReport, Failure
from aws_ws_async.delivery.report import FailureReason
from aws_ws_async.models import DisconnectReason, WebSocketSession
from aws_ws_async.models.operations import Operation, ProgressFn, bulk_call
from aws_ws_async.models.sending import arun_bulk, run_bulk
from aws_ws_async.models.sessions import WebSocketSessionQuerySet

if TYPE_CHECKING:
    from aws_ws_async.delivery import Engine
    from aws_ws_async.delivery.engine import Recipients

#: Sessions silent for longer than this are doubtful (half API Gateway's idle timeout: a client
#: pinging every 5 minutes, as the browser client does, is never probed).
DEFAULT_IDLE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ProbeOperation(Operation):
    """``GET`` instead of ``POST``/``DELETE``: marks only what answered 410 (``gone``)."""

    @property
    def closes(self) -> bool:
        return False

    async def deliver(self, engine: Engine, recipients: Recipients) -> DeliveryReport:
        return await engine.probe(recipients)

    def unreachable(self, ids: list[str], gateway_id: int | None) -> DeliveryReport:
        """No endpoint to ask: the row cannot be confirmed either way (left as it is)."""
        detail = "session has no api_gateway" if gateway_id is None else "gateway not provisioned"
        reason = (
            FailureReason.NO_GATEWAY
            if gateway_id is None
            else (FailureReason.GATEWAY_NOT_PROVISIONED)
        )
        return DeliveryReport(failed=[Failure(cid, reason, None, detail, 0) for cid in ids])

    def to_mark(self, report: DeliveryReport) -> list[str]:
        return list(report.gone)


PROBE = ProbeOperation("probe", "probe", DisconnectReason.GONE)


def doubtful(
    queryset: WebSocketSessionQuerySet | None = None,
    *,
    idle: timedelta = DEFAULT_IDLE,
    now: datetime | None = None,
) -> WebSocketSessionQuerySet:
    """Connected sessions not seen for ``idle`` (and not certainly stale: those need no GET)."""
    if not isinstance(idle, timedelta) or idle < timedelta(0):
        raise ValueError(f"idle must be a timedelta >= 0, not {idle!r}")
    base = queryset if queryset is not None else WebSocketSession.objects.all()
    now = now or timezone.now()
    stale = base.stale(now=now).values("pk")
    return base.filter(connected=True, last_seen_at__lt=now - idle).exclude(pk__in=stale)


async def aconfirm(
    queryset: WebSocketSessionQuerySet,
    *,
    concurrency: int | None = None,
    db_chunk_size: int | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 (the whole call's deadline)
    progress: ProgressFn | None = None,
    announce_leaves: bool = False,
) -> DeliveryReport:
    """Probe every connected session of ``queryset``; 410 ones end ``gone``.

    The report's ``delivered`` are the connections API Gateway still has open, ``gone`` the
    ones it does not (their rows are now disconnected), ``failed`` those it could not say.
    ``announce_leaves``: tell each gone user's channels (presence ``leave`` events) when that
    was their last live connection there, as a ``$disconnect`` would have.
    """
    call = _call(queryset, concurrency, db_chunk_size, timeout, progress)
    report = await arun_bulk(queryset, call)
    if announce_leaves and report.gone:
        await aannounce_leaves(queryset.db, report.gone)
    return report


async def aannounce_leaves(db: str, connection_ids: list[str]) -> int:
    """Presence ``leave`` events for these (now disconnected) sessions; returns how many."""
    from aws_ws_async.channels.events import aannounce

    sent = 0
    done: set[tuple[Any, str]] = set()  # two tabs of one user gone together: one leave
    rows = WebSocketSession.objects.using(db).filter(
        connection_id__in=connection_ids, user__isnull=False
    )
    async for session in rows.select_related("user").prefetch_related("subscriptions"):
        name = str(session.user.get_username())  # type: ignore[union-attr]
        for subscription in session.subscriptions.all():
            key = (session.user_id, subscription.channel_name)
            if key in done:
                continue
            done.add(key)
            if await aannounce(session, subscription.channel_name, "leave", name) is not None:
                sent += 1
    return sent


def confirm(
    queryset: WebSocketSessionQuerySet,
    *,
    concurrency: int | None = None,
    db_chunk_size: int | None = None,
    timeout: float | None = None,
    progress: ProgressFn | None = None,
    announce_leaves: bool = False,
) -> DeliveryReport:
    """Sync twin of :func:`aconfirm` (queries and marks here, the GETs on the portal loop)."""
    call = _call(queryset, concurrency, db_chunk_size, timeout, progress)
    report = run_bulk(queryset, call)
    if announce_leaves and report.gone:
        from aws_ws_async import sync

        db, gone = queryset.db, list(report.gone)
        sync.run(lambda: aannounce_leaves(db, gone), orm=True)
    return report


def _call(queryset: Any, concurrency: Any, db_chunk_size: Any, timeout: Any, progress: Any) -> Any:
    return bulk_call(
        queryset,
        PROBE,
        concurrency=concurrency,
        db_chunk_size=db_chunk_size,
        timeout=timeout,
        progress=progress,
        collect_delivered=True,
    )
