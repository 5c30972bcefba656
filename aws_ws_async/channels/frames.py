"""The server -> client frames of the channels protocol, encoded once, checked against 128 KiB.

A channel broadcast is posted as ``{"type":"message","channel":..,"seq":..,"data":..}``; the
whole envelope counts toward API Gateway's limit, so the size is checked on the envelope, not on
``data``. ``data`` is encoded once per broadcast (not per recipient) and the frame is assembled
from bytes, so adding ``seq`` to a frame costs a concatenation, not a second ``json.dumps``.
"""

from __future__ import annotations

import json
from typing import Any

from aws_ws_async.delivery.payload import MAX_PAYLOAD_BYTES
from aws_ws_async.exceptions import PayloadTooLarge
from aws_ws_async.validators import is_valid_channel_name


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_channel(channel: Any) -> str:
    """The channel name, or a clear ``TypeError`` / ``ValueError`` before anything happens."""
    if not isinstance(channel, str):
        raise TypeError(f"channel must be a str, not {type(channel).__name__}")
    if not is_valid_channel_name(channel):
        raise ValueError(
            f"invalid channel name {channel!r}: 1-128 characters, letters, digits, '_', '-' or '.'"
        )
    return channel


def encode_data(data: Any) -> bytes:
    """``data`` as the JSON text of the envelope's ``"data"`` member.

    Anything ``json.dumps`` accepts is encoded compactly (a ``str`` becomes a JSON string).
    ``bytes`` are taken as JSON already encoded by the caller (encode once, publish many times)
    and must be valid UTF-8 JSON: the frame must stay one parseable JSON object.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        try:
            json.loads(raw)
        except ValueError as exc:
            raise TypeError(
                f"bytes given to a channel must be UTF-8 JSON text (they become the frame's "
                f'"data"); pass a dict, list or str to have it encoded ({exc})'
            ) from exc
        return raw
    try:
        return _dumps(data)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"cannot publish {type(data).__name__}: publish JSON-serialisable data ({exc})"
        ) from exc


def message_frame(channel: str, data_json: bytes, seq: int | None) -> bytes:
    """The ``message`` frame; raises :class:`PayloadTooLarge` when the envelope exceeds 128 KiB."""
    head = b'{"type":"message","channel":' + _dumps(channel)
    if seq is not None:
        head += b',"seq":' + str(seq).encode("ascii")
    frame = head + b',"data":' + data_json + b"}"
    if len(frame) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(len(frame), MAX_PAYLOAD_BYTES)
    return frame


def gap_frame(channel: str, since: int, oldest: int, seq: int) -> bytes:
    """``gap``: history after ``since`` is no longer complete; replay starts at ``oldest``."""
    return _dumps({"type": "gap", "channel": channel, "since": since, "oldest": oldest, "seq": seq})
