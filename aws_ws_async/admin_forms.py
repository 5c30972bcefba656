"""Forms of the session admin's operations: a message to send, and the channel to send it to.

Validation happens here, before anything is posted: a message that is not what the operator
meant (malformed JSON, ``NaN``, over API Gateway's 128 KiB) is shown back in the form with the
reason, and nothing is sent. On success :attr:`MessageForm.payload` holds the exact bytes every
recipient gets.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from aws_ws_async.delivery.payload import MAX_PAYLOAD_BYTES
from aws_ws_async.validators import validate_channel_name

TEXT, JSON = "text", "json"


def _refuse_constant(name: str) -> Any:
    """``NaN``/``Infinity`` are accepted by Python's parser but are not JSON: clients choke."""
    raise ValueError(f"{name} is not valid JSON (use null or a number)")


def json_payload(text: str) -> bytes:
    """Parse ``text`` as JSON and return its compact UTF-8 encoding (what recipients get).

    Raises ``forms.ValidationError`` with the parser's line and column, so the operator can
    find the mistake in the form.
    """
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            "Not valid JSON: %(msg)s (line %(line)s, column %(col)s).",
            code="invalid_json",
            params={"msg": exc.msg, "line": exc.lineno, "col": exc.colno},
        ) from exc
    except ValueError as exc:
        raise forms.ValidationError(
            "Not valid JSON: %(msg)s.", code="invalid_json", params={"msg": str(exc)}
        ) from exc
    except RecursionError as exc:
        raise forms.ValidationError(
            "Not valid JSON: nested too deeply.", code="invalid_json"
        ) from exc
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class MessageForm(forms.Form):
    """One message: text (sent as typed) or JSON (checked, sent compact), at most 128 KiB."""

    format = forms.ChoiceField(
        choices=[(TEXT, "Text (sent exactly as typed)"), (JSON, "JSON (checked, sent compact)")],
        initial=TEXT,
        widget=forms.RadioSelect,
    )
    # strip=False: a text message is sent byte for byte as the operator typed it.
    message = forms.CharField(
        strip=False,
        widget=forms.Textarea(attrs={"rows": 10, "cols": 80, "spellcheck": "false"}),
        help_text=f"At most {MAX_PAYLOAD_BYTES} bytes (128 KiB) once encoded as UTF-8.",
    )

    #: The bytes to send, set by a successful ``is_valid()``.
    payload: bytes = b""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        text, kind = data.get("message"), data.get("format")
        if not isinstance(text, str) or kind is None:
            return data  # the field errors already say what is missing
        try:
            body = json_payload(text) if kind == JSON else text.encode("utf-8")
        except forms.ValidationError as exc:
            self.add_error("message", exc)
            return data
        except UnicodeEncodeError:
            self.add_error("message", "The message is not valid UTF-8 text.")
            return data
        if len(body) > MAX_PAYLOAD_BYTES:
            self.add_error(
                "message",
                forms.ValidationError(
                    "The message is %(size)s bytes; API Gateway accepts at most %(limit)s "
                    "(128 KiB).",
                    code="too_large",
                    params={"size": len(body), "limit": MAX_PAYLOAD_BYTES},
                ),
            )
            return data
        self.payload = body
        return data


class ChannelMessageForm(MessageForm):
    """A message for every connected session of one channel."""

    channel = forms.CharField(
        max_length=128,
        validators=[validate_channel_name],
        help_text="Every connected session of this channel gets the message.",
    )
    field_order = ("channel", "format", "message")
