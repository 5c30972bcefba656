"""The refusal responses of ``WebSocketView``, each an overridable async method.

Responses to ``$connect`` only decide whether API Gateway opens the socket; responses to
messages and ``$disconnect`` reach only API Gateway's logs. Bodies are short JSON objects with a
stable ``error`` code; they never echo settings (``ALLOWED_HOSTS``, secrets, header lists).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, JsonResponse


def error_response(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": code, "message": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


class ResponsesMixin:
    """Every refusal the view can answer, with its status code (see ``docs/views.md``)."""

    async def misconfigured(self, request: Any) -> HttpResponse:
        """A security setting is bad: refuse without saying which (the server log says)."""
        return error_response(503, "unavailable", "Service unavailable")

    async def invalid_gateway_secret(self, request: Any) -> HttpResponse:
        return error_response(403, "forbidden", "Invalid request")

    async def missing_headers(self, request: Any, missing: list[str]) -> HttpResponse:
        return error_response(400, "missing_headers", f"Missing {len(missing)} required headers")

    async def unknown_gateway(self, request: Any) -> HttpResponse:
        return error_response(403, "unknown_gateway", "Unknown API")

    async def invalid_useragent(self, request: Any) -> HttpResponse:
        return error_response(400, "invalid_useragent", "Unexpected User-Agent")

    async def invalid_connection_id(self, request: Any) -> HttpResponse:
        return error_response(400, "invalid_connection_id", "Invalid connection ID")

    async def invalid_host(self, request: Any) -> HttpResponse:
        return error_response(400, "invalid_host", "Invalid Host header")

    async def invalid_origin(self, request: Any) -> HttpResponse:
        return error_response(403, "invalid_origin", "Origin not allowed")

    async def invalid_channel(self, request: Any) -> HttpResponse:
        return error_response(400, "invalid_channel", "Invalid channel")

    async def invalid_token(self, request: Any) -> HttpResponse:
        return error_response(401, "invalid_token", "Invalid or expired token")

    async def rate_limited(self, request: Any, retry_after: int) -> HttpResponse:
        return error_response(
            429, "rate_limited", "Too many connection attempts", Retry_After=str(retry_after)
        )

    async def permission_denied(self, request: Any) -> HttpResponse:
        return error_response(403, "permission_denied", "Permission denied")

    async def connection_refused(self, request: Any, message: str) -> HttpResponse:
        return error_response(403, "connection_refused", message or "Connection refused")

    async def duplicate_connection(self, request: Any) -> HttpResponse:
        return error_response(409, "duplicate_connection", "Connection ID already registered")

    async def session_not_found(self, request: Any) -> HttpResponse:
        return error_response(401, "unknown_connection", "Invalid connection ID")

    async def payload_too_large(self, request: Any) -> HttpResponse:
        return error_response(413, "payload_too_large", "Message too large")

    async def invalid_body(self, request: Any) -> HttpResponse:
        return error_response(400, "invalid_body", "The message must be a JSON object")

    async def handler_selection_key_missing(self, request: Any) -> HttpResponse:
        return error_response(400, "handler_missing", "The message names no handler")

    async def route_selection_key_missing(self, request: Any) -> HttpResponse:
        return await self.handler_selection_key_missing(request)

    async def unknown_handler(self, request: Any, name: str) -> HttpResponse:
        return error_response(404, "unknown_handler", "Unknown handler")

    async def handler_error(self, request: Any) -> HttpResponse:
        return error_response(500, "handler_error", "The handler failed")
