"""The fan-out engine. It knows connection ids and payloads, never Django models.

Feed :func:`deliver` (or an :class:`Engine`) an async or plain iterable of connection ids, a
payload from :func:`encode_payload` and a :class:`Transport`; get a :class:`DeliveryReport`.
"""

from aws_ws_async.delivery.aiobotocore_transport import AiobotocoreTransport
from aws_ws_async.delivery.engine import DeliveryPolicy, Engine, Verdict, classify, deliver
from aws_ws_async.delivery.limiter import AdaptiveLimiter
from aws_ws_async.delivery.memory import InMemoryTransport, Network
from aws_ws_async.delivery.payload import MAX_PAYLOAD_BYTES, encode_payload
from aws_ws_async.delivery.report import DeliveryReport, Failure, FailureReason
from aws_ws_async.delivery.transport import BaseTransport, Outcome, Transport, TransportError

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "AdaptiveLimiter",
    "AiobotocoreTransport",
    "BaseTransport",
    "DeliveryPolicy",
    "DeliveryReport",
    "Engine",
    "Failure",
    "FailureReason",
    "InMemoryTransport",
    "Network",
    "Outcome",
    "Transport",
    "TransportError",
    "Verdict",
    "classify",
    "deliver",
    "encode_payload",
]
