"""A SigV4 signer specialised for ``@connections`` requests (a broadcast's hot path).

botocore's ``SigV4Auth`` is general: per request it re-parses the URL twice, walks and
canonicalises every header, hashes the body and derives the signing key with four HMACs. A
broadcast signs thousands of requests that differ only in the connection id and the clock, so
this signer precomputes what does not change:

* the canonical host and URL prefix (parsed once),
* the body's SHA-256 (one payload for every recipient: hashed once per distinct body),
* the signing key (derived once per credentials and UTC day).

It signs exactly the headers botocore would for these requests (``host``, ``x-amz-date`` and,
with temporary credentials, ``x-amz-security-token``) and produces byte-identical
``Authorization`` values; ``tests/test_delivery.py`` checks that against botocore itself.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.utils import normalize_url_path

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_host(url: str) -> str:
    """``host[:port]`` as SigV4 signs it: the port only when it is not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None and parts.port != DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


class ConnectionsSigner:
    """Signs ``METHOD {endpoint}/@connections/{quoted id}`` requests for one endpoint."""

    def __init__(self, endpoint_url: str, region: str, service: str = "execute-api") -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.prefix = f"{self.endpoint_url}/@connections/"
        self.host = canonical_host(self.endpoint_url)
        # SigV4 (non-S3) signs the URI-encoded form of the already percent-encoded path.
        self._path_prefix = quote(normalize_url_path(urlsplit(self.prefix).path or "/"), safe="/~")
        self.region = region
        self.service = service
        self._body: bytes | None = None
        self._body_hash = EMPTY_SHA256
        self._key_for: tuple[str, str] | None = None
        self._key = b""

    def url(self, quoted_id: str) -> str:
        return self.prefix + quoted_id

    def _payload_hash(self, body: bytes | None) -> str:
        if not body:
            return EMPTY_SHA256
        if body is not self._body:
            self._body = body
            self._body_hash = hashlib.sha256(body).hexdigest()
        return self._body_hash

    def _signing_key(self, secret_key: str, datestamp: str) -> bytes:
        if self._key_for != (secret_key, datestamp):
            key = hmac.new(f"AWS4{secret_key}".encode(), datestamp.encode(), hashlib.sha256)
            key = hmac.new(key.digest(), self.region.encode(), hashlib.sha256)
            key = hmac.new(key.digest(), self.service.encode(), hashlib.sha256)
            key = hmac.new(key.digest(), b"aws4_request", hashlib.sha256)
            self._key = key.digest()
            self._key_for = (secret_key, datestamp)
        return self._key

    def sign(
        self,
        method: str,
        quoted_id: str,
        body: bytes | None,
        credentials: Any,
        amz_date: str | None = None,
    ) -> dict[str, str]:
        """The headers to send: ``X-Amz-Date``, ``Authorization`` (and the session token)."""
        if amz_date is None:
            amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        datestamp = amz_date[:8]
        token = credentials.token
        path = self._path_prefix + quote(quoted_id, safe="/~")
        if token:
            canonical_headers = (
                f"host:{self.host}\nx-amz-date:{amz_date}\nx-amz-security-token:{token}\n"
            )
            signed_headers = "host;x-amz-date;x-amz-security-token"
        else:
            canonical_headers = f"host:{self.host}\nx-amz-date:{amz_date}\n"
            signed_headers = "host;x-amz-date"
        canonical_request = (
            f"{method}\n{path}\n\n{canonical_headers}\n{signed_headers}\n{self._payload_hash(body)}"
        )
        scope = f"{datestamp}/{self.region}/{self.service}/aws4_request"
        string_to_sign = (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
            f"{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        )
        signature = hmac.new(
            self._signing_key(credentials.secret_key, datestamp),
            string_to_sign.encode(),
            hashlib.sha256,
        ).hexdigest()
        headers = {
            "X-Amz-Date": amz_date,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                f"SignedHeaders={signed_headers}, Signature={signature}"
            ),
        }
        if token:
            headers["X-Amz-Security-Token"] = token
        return headers
