"""The models of aws_ws_async, one module per aggregate."""

from aws_ws_async.models.broadcasts import Broadcast, BroadcastShard, BroadcastStatus
from aws_ws_async.models.channels import ChannelAccess, ChannelPermission, ChannelPermissionRule
from aws_ws_async.models.gateways import ApiGateway, ApiGatewayAdditionalRoute, ProvisioningStatus
from aws_ws_async.models.history import ChannelHistory, ChannelMessage
from aws_ws_async.models.ratelimits import ConnectionRateLimit
from aws_ws_async.models.sessions import (
    DisconnectReason,
    WebSocketSession,
    WebSocketSessionManager,
    WebSocketSessionQuerySet,
)
from aws_ws_async.models.subscriptions import ChannelSubscription
from aws_ws_async.models.tokens import WebSocketToken

__all__ = [
    "ApiGateway",
    "ApiGatewayAdditionalRoute",
    "Broadcast",
    "BroadcastShard",
    "BroadcastStatus",
    "ChannelAccess",
    "ChannelHistory",
    "ChannelMessage",
    "ChannelPermission",
    "ChannelPermissionRule",
    "ChannelSubscription",
    "ConnectionRateLimit",
    "DisconnectReason",
    "ProvisioningStatus",
    "WebSocketSession",
    "WebSocketSessionManager",
    "WebSocketSessionQuerySet",
    "WebSocketToken",
]
