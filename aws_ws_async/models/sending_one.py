"""One connection: post to it (or close it), then mark its row on its own database.

The gateway's endpoint is taken from a loaded ``api_gateway`` or remembered from an earlier
send on the same instance, so repeated sends to one session ask no query; a row already
disconnected is not contacted. Entry point of ``session.asend_message`` / ``send_message`` /
``adisconnect`` / ``disconnect`` (through :mod:`.sending`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_ws_async import sync, telemetry
from aws_ws_async.delivery import DeliveryPolicy, DeliveryReport
from aws_ws_async.models.broadcast import FanOut
from aws_ws_async.models.endpoints import Endpoints
from aws_ws_async.models.gateways import ApiGateway
from aws_ws_async.models.operations import Operation
from aws_ws_async.models.sending_report import deadline_of

if TYPE_CHECKING:
    from aws_ws_async.models.sessions import WebSocketSession


def _loaded_endpoint(session: WebSocketSession) -> tuple[bool, str | None]:
    """``(known, endpoint)`` without a query: from a loaded ``api_gateway`` or an earlier send."""
    gateway_id = session.api_gateway_id
    if gateway_id is None:
        return True, None
    field: Any = type(session)._meta.get_field("api_gateway")
    if field.is_cached(session):  # select_related("api_gateway"), or accessed before
        gateway = field.get_cached_value(session)
        if isinstance(gateway, ApiGateway) and gateway.pk == gateway_id:
            return True, gateway.management_endpoint
    remembered = session.__dict__.get("_aws_ws_async_endpoint")
    if remembered is not None and remembered[0] == (gateway_id, session._state.db):
        return True, remembered[1]
    return False, None


def _remember(session: WebSocketSession, endpoints: Endpoints) -> str | None:
    """Keep the endpoint on the instance, so the next send on it asks no query."""
    endpoint = endpoints.get(session.api_gateway_id)
    session.__dict__["_aws_ws_async_endpoint"] = (
        (session.api_gateway_id, session._state.db),
        endpoint,
    )
    return endpoint


async def _aendpoint(session: WebSocketSession) -> str | None:
    known, endpoint = _loaded_endpoint(session)
    if known:
        return endpoint
    gateways = ApiGateway.objects.using(session._state.db)
    return _remember(session, await gateways.aendpoints([session.api_gateway_id]))


def _endpoint(session: WebSocketSession) -> str | None:
    known, endpoint = _loaded_endpoint(session)
    if known:
        return endpoint
    gateways = ApiGateway.objects.using(session._state.db)
    return _remember(session, gateways.endpoints([session.api_gateway_id]))


def _one(
    session: WebSocketSession,
    op: Operation,
    endpoint: str | None,
    policy: DeliveryPolicy,
    timeout: float | None,
) -> FanOut:
    gateway_id = session.api_gateway_id
    return FanOut(
        op,
        {gateway_id: [session.connection_id]},
        {gateway_id: endpoint},
        policy,
        deadline=deadline_of(timeout),
    )


def _skipped(session: WebSocketSession) -> DeliveryReport:
    """A row already disconnected is not contacted: it is reported gone."""
    return DeliveryReport(gone=[session.connection_id], concurrency=1)


def _mark_reason(op: Operation, report: DeliveryReport) -> str | None:
    """The reason to write on the row after a single send or close (None: leave it)."""
    if op.closes:
        return None if report.failed else op.reason
    return op.reason if report.gone else None


async def arun_one(
    session: WebSocketSession,
    op: Operation,
    policy: DeliveryPolicy,
    timeout: float | None,  # noqa: ASYNC109 (a deadline handed to the fan-out)
) -> DeliveryReport:
    """One connection: post (or close) it, then mark the row on its own database."""
    if not op.closes and not session.connected:
        return _skipped(session)
    started = time.perf_counter()
    report = await _one(session, op, await _aendpoint(session), policy, timeout).run()
    telemetry.delivery_finished(report, f"session_{op.signal}", started=started, gateways=1)
    reason = _mark_reason(op, report)
    if reason is not None:
        await session.amark_disconnected(reason)
    return report


def run_one(
    session: WebSocketSession, op: Operation, policy: DeliveryPolicy, timeout: float | None
) -> DeliveryReport:
    """Sync twin of :func:`arun_one`: the query and the mark here, the post on the portal."""
    sync.check_not_on_loop()
    if not op.closes and not session.connected:
        return _skipped(session)
    started = time.perf_counter()
    report = sync.run(_one(session, op, _endpoint(session), policy, timeout).run)
    telemetry.delivery_finished(report, f"session_{op.signal}", started=started, gateways=1)
    reason = _mark_reason(op, report)
    if reason is not None:
        session.mark_disconnected(reason)
    return report
