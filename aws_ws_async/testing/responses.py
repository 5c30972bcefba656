"""Responses shaped like API Gateway's ``@connections`` API, for stubs and emulators.

Errors carry ``x-amzn-errortype`` and a JSON ``{"message": ...}`` body, which is what botocore
needs to resolve modelled exceptions (``GoneException``...). ``bare=True`` drops the header and
the typed body, as some emulators do, so botocore falls back to a generic ``ClientError``.
"""

from __future__ import annotations

import json
import uuid

from aiohttp import web

#: Status -> (x-amzn-errortype, default message) of the errors ``@connections`` can return.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequestException", "Invalid connectionId"),
    403: ("ForbiddenException", "Forbidden"),
    410: ("GoneException", "Connection is gone"),
    413: ("PayloadTooLargeException", "Payload too large"),
    429: ("LimitExceededException", "Rate exceeded"),
    500: ("InternalServerErrorException", "Internal server error"),
    502: ("BadGatewayException", "Bad gateway"),
    503: ("ServiceUnavailableException", "Service unavailable"),
    504: ("GatewayTimeoutException", "Gateway timeout"),
}


def error_response(status: int, message: str | None = None, *, bare: bool = False) -> web.Response:
    """An API-Gateway-like error response (or a bare status with ``bare=True``)."""
    error_type, default_message = ERRORS.get(status, ("UnknownException", "Error"))
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if bare:
        return web.Response(status=status, headers=headers)
    headers["x-amzn-errortype"] = error_type
    body = json.dumps({"message": message or default_message})
    return web.Response(status=status, headers=headers, body=body, content_type="application/json")


def ok_response(status: int = 200) -> web.Response:
    """POST answers 200 with an empty body; DELETE answers 204."""
    return web.Response(status=status, headers={"x-amzn-RequestId": str(uuid.uuid4())})
