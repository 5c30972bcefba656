"""Turning what a caller wants to send into the bytes API Gateway will accept."""

from __future__ import annotations

import json
from typing import Any

from aws_ws_async.exceptions import PayloadTooLarge

#: API Gateway's limit for one ``PostToConnection`` body (128 KiB); botocore does not enforce it.
MAX_PAYLOAD_BYTES = 131072


def encode_payload(data: Any, *, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """``dict``/``list`` -> compact JSON, ``str`` -> UTF-8, ``bytes`` as is; size checked once.

    The check runs before any connection is contacted, so an oversized broadcast fails as a
    whole instead of producing thousands of 413s.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        body = bytes(data)
    elif isinstance(data, str):
        body = data.encode("utf-8")
    else:
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(body) > limit:
        raise PayloadTooLarge(len(body), limit)
    return body
