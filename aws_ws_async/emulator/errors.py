"""``@connections`` error answers in API Gateway's wire format.

botocore takes the error code from the ``x-amzn-errortype`` header, so every error carries it:
without it, clients see a generic ``ClientError`` with the status as code (the serverless-offline
trap described in the AWS notes).
"""

from __future__ import annotations

import json

from aiohttp import web

from aws_ws_async.emulator.ids import new_request_id

#: ``(status, error type, message)`` of every error the ``@connections`` side answers.
GONE = (410, "GoneException", None)
LIMIT_EXCEEDED = (429, "LimitExceededException", "Rate exceeded")
PAYLOAD_TOO_LARGE = (413, "PayloadTooLargeException", "Message too long")
FORBIDDEN = (403, "ForbiddenException", "Forbidden")
BAD_REQUEST = (400, "BadRequestException", "Bad request")


def aws_error(error: tuple[int, str, str | None], message: str | None = None) -> web.Response:
    """A JSON error response with ``x-amzn-errortype`` and a request id, like API Gateway's."""
    status, error_type, default_message = error
    text = message or default_message
    body = json.dumps({"message": text} if text is not None else {})
    return web.Response(
        status=status,
        body=body.encode(),
        content_type="application/json",
        headers={"x-amzn-errortype": error_type, "x-amzn-RequestId": new_request_id()},
    )
