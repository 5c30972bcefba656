"""One small hierarchy of aws_ws_async errors, so callers can catch ours with one clause."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured, SynchronousOnlyOperation


class AwsWsAsyncError(Exception):
    """Base class of every error this package raises on purpose."""


class ImproperlyConfiguredGateway(AwsWsAsyncError, ImproperlyConfigured):
    """A gateway row lacks what an operation needs (no ``api_id``, no stage, no region...)."""


class PayloadTooLarge(AwsWsAsyncError, ValueError):
    """A message is larger than API Gateway accepts (128 KiB); raised before anything is sent."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message is {size} bytes; API Gateway accepts at most {limit} bytes")
        self.size = size
        self.limit = limit


class DeliveryError(AwsWsAsyncError):
    """A single post to one connection failed for a reason other than the connection being gone."""


class DeliveryFailed(DeliveryError):
    """Raised by ``DeliveryReport.raise_for_failures()``: ``report`` says who failed and why."""

    def __init__(self, report: Any) -> None:
        failed = report.failed
        sample = ", ".join(f"{f.connection_id} ({f.reason})" for f in failed[:3])
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        super().__init__(f"{len(failed)} of {report.total} recipient(s) failed: {sample}{more}")
        self.report = report


class BroadcastAborted(AwsWsAsyncError):
    """A broadcast or bulk close stopped before every recipient was handled.

    ``report`` holds what was done before the stop (delivered, gone and marked, failed; posts
    cancelled in flight are failures with reason ``cancelled``); ``__cause__`` is the error
    that stopped it. Nothing is posted after this is raised.
    """

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(f"{message}; before stopping: {report.summary()}")
        self.report = report


class BroadcastTimeout(BroadcastAborted, TimeoutError):
    """A broadcast's ``timeout=`` (total deadline) expired; ``report`` says how far it got."""


class ApiGatewaySyncError(AwsWsAsyncError):
    """Provisioning or synchronising with AWS failed; ``last_error`` on the gateway says why."""


class ProvisioningInProgress(ApiGatewaySyncError):
    """Another run holds the provisioning claim on this gateway."""


# --- the sync bridge (aws_ws_async.sync) -----------------------------------------------------


class BridgeError(AwsWsAsyncError):
    """A sync twin could not hand its work to the portal loop."""


class SyncCallOnEventLoop(BridgeError, SynchronousOnlyOperation):
    """A sync twin was called on a thread running an event loop; await the async twin instead."""


class CalledInsideTransaction(BridgeError, ApiGatewaySyncError):
    """A sync twin that must not run inside ``transaction.atomic()`` was called inside one.

    Provisioning calls AWS: a rollback cannot take back what AWS created, and the portal's own
    database connections cannot see the caller's uncommitted rows (and would wait on its locks).
    """
