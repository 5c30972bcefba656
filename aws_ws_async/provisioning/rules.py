"""Value rules AWS imposes on what provisioning sends: integration hosts and tags.

Pure functions, shared by the model's ``clean()`` (a clear form error) and the engine (which
refuses to send what ``full_clean`` would have caught, since rows can be written without it).
"""

from __future__ import annotations

#: AWS tag limits (API Gateway): 50 tags, keys up to 128 and values up to 256 characters.
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 50, 128, 256


def host_is_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``host`` matches one entry; ``*.example.com`` matches sub-domains only."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and host != entry[2:]:
                return True
        elif host == entry:
            return True
    return False


def tags_problem(tags: object) -> str:
    """Why ``tags`` cannot be sent to AWS ("" if it can). Pushing a non-object would untag."""
    if not isinstance(tags, dict):
        return "Tags must be a JSON object of string keys and values."
    if len(tags) > MAX_TAGS:
        return f"AWS allows at most {MAX_TAGS} tags."
    for key, value in tags.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            return f"Tag {key!r}: the value must be a string (or a number)."
        if not key or len(key) > MAX_TAG_KEY or len(str(value)) > MAX_TAG_VALUE:
            return f"Tag {key!r}: keys are 1-{MAX_TAG_KEY} and values 0-{MAX_TAG_VALUE} characters."
        if key.lower().startswith("aws:"):
            return f"Tag {key!r}: the 'aws:' prefix is reserved by AWS."
    return ""
