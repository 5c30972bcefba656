"""Identifiers shaped like API Gateway's: connection ids, request ids and X-Ray trace ids.

Real connection ids are 16 characters of base64 ending in ``=`` (11 bytes), e.g.
``L0SM9cOFvHcCIhw=``. We use the URL-safe alphabet: the ``=`` still exercises URL encoding in
``@connections`` paths (``%3D``), and no id contains ``/``, which would split a path segment.
"""

from __future__ import annotations

import base64
import os
import time
import uuid


def new_connection_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(11)).decode("ascii")


def new_request_id() -> str:
    return str(uuid.uuid4())


def new_trace_id() -> str:
    """An ``X-Amzn-Trace-Id`` value: ``Root=1-<epoch seconds hex>-<96 random bits hex>``."""
    return f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()}"
