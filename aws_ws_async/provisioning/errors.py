"""How a failed provisioning step is described to people (``last_error``, admin messages)."""

from __future__ import annotations

from aws_ws_async.provisioning.clients import error_code

#: ``last_error`` is bounded: an AWS message can be long and the column is shown in the admin.
LAST_ERROR_MAX = 1000


def describe_error(exc: BaseException) -> str:
    """The AWS error code, operation and message, or the exception class (bounded)."""
    code = error_code(exc)
    if code:
        response = getattr(exc, "response", {})
        message = response.get("Error", {}).get("Message", "") or str(exc)
        operation = getattr(exc, "operation_name", "")
        text = f"{code} ({operation}): {message}" if operation else f"{code}: {message}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:LAST_ERROR_MAX]
