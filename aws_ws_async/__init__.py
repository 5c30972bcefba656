"""aws_ws_async: an async-first Django backend for AWS API Gateway WebSocket APIs.

Public names are imported lazily so ``import aws_ws_async`` never touches Django settings.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "WebSocketView": "aws_ws_async.views",
    "WebSocketTokenView": "aws_ws_async.views",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aws_ws_async' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = ["WebSocketTokenView", "WebSocketView", "__version__"]
