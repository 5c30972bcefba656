"""The default transport: an aiobotocore ``apigatewaymanagementapi`` client.

Two paths over the same client, the same connection pool and the same credentials:

* ``fast`` (default): the request for ``POST @connections/{id}`` is built directly, signed with
  the client's own (refreshable) credentials by :class:`~aws_ws_async.delivery.sigv4.
  ConnectionsSigner` and sent through the client's own HTTP session (its aiohttp pool, timeouts
  and error mapping). A full ``client.post_to_connection`` call spends most of its ~1 ms of CPU
  on machinery a broadcast does not need per post: endpoint-ruleset resolution, parameter
  validation and serialisation, user-agent assembly, a dozen event-hook emissions, a generic
  SigV4 pass that re-hashes the same payload for every recipient, and response parsing. The
  signature is still computed per request, right before sending, so it never expires in a queue.
* ``standard``: ``client.post_to_connection(...)`` exactly as documented, used when the client
  lacks the internals the fast path relies on (a different aiobotocore), or on request.

Both classify by HTTP status and report ``x-amzn-errortype`` when present; botocore's own
retries are turned off in the client config (:func:`aws_ws_async.aws.management_client_config`)
so they never multiply with the engine's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

import aiohttp
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)
from yarl import URL

from aws_ws_async.delivery.sigv4 import ConnectionsSigner
from aws_ws_async.delivery.transport import OK, BaseTransport, Outcome, TransportError

logger = logging.getLogger("aws_ws_async.delivery")


def _error_from_body(body: bytes) -> str:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(parsed, dict):
        return str(parsed.get("message") or parsed.get("Message") or "")
    return ""


@dataclass(frozen=True, slots=True)
class _Internals:
    """Everything the fast path reads from aiobotocore beyond its public API."""

    http: Any  # the client's AIOHTTPSession
    credentials: Any  # the client's (refreshable) credentials
    signing_name: str
    region: str
    user_agent: str
    #: The client's own aiohttp session factory, or None to go through ``http.send``.
    get_session: Callable[[], Awaitable[Any]] | None


_fallback_logged = False


def read_internals(client: Any, endpoint_url: str, *, direct: bool) -> _Internals | None:
    """The ONE place that reads aiobotocore's private attributes, checked when a transport is
    built. None (logged once at INFO) when they are missing, so the standard path is used."""
    global _fallback_logged
    try:
        http = client._endpoint.http_session
        credentials = client._request_signer._credentials
        signing_name = str(client.meta.service_model.signing_name)
        region = client.meta.region_name
        user_agent = str(client._user_agent_creator.to_string())
        get_session: Any = getattr(http, "_get_session", None)
        proxy_config = getattr(http, "_proxy_config", None)
        # The client's aiohttp session (its pool and timeouts) is used directly when no proxy
        # is configured; otherwise requests go through aiobotocore's ``send``.
        proxied = proxy_config is None or bool(proxy_config.proxy_url_for(endpoint_url))
    except AttributeError as exc:
        if not _fallback_logged:
            _fallback_logged = True
            logger.info(
                "aiobotocore internals changed (%s); @connections calls use the standard "
                "client.post_to_connection path",
                exc,
            )
        return None
    if credentials is None or not region:
        return None
    use_direct = direct and callable(get_session) and not proxied
    return _Internals(
        http,
        credentials,
        signing_name,
        str(region),
        user_agent,
        (lambda: get_session(None)) if use_direct else None,
    )


class AiobotocoreTransport(BaseTransport):
    """Posts through one aiobotocore client (one endpoint: one API and stage).

    The client is shared (the per-loop cache in :mod:`aws_ws_async.aws` owns and closes it);
    pass ``owned=`` the client's context manager to have :meth:`aclose` close it instead.
    """

    def __init__(
        self, client: Any, *, fast: bool = True, direct: bool = True, owned: Any = None
    ) -> None:
        self.client = client
        self._owned = owned
        self.endpoint_url: str = str(client.meta.endpoint_url).rstrip("/")
        self._prefix = f"{self.endpoint_url}/@connections/"
        internals = read_internals(client, self.endpoint_url, direct=direct) if fast else None
        self.fast = internals is not None
        self._direct = internals is not None and internals.get_session is not None
        self._session: Any = None
        if internals is not None:
            self._internals = internals
            self._http = internals.http
            self._credentials = internals.credentials
            self._user_agent = internals.user_agent
            self._signer = ConnectionsSigner(
                self.endpoint_url, internals.region, internals.signing_name
            )

    @classmethod
    async def for_endpoint(
        cls,
        endpoint_url: str,
        *,
        pool_size: int,
        fast: bool,
        get_client: Callable[..., Awaitable[Any]],
    ) -> AiobotocoreTransport:
        """How the per-loop cache builds one: around its cached client (which it closes)."""
        client = await get_client(endpoint_url, max_pool_connections=pool_size)
        return cls(client, fast=fast)

    async def aclose(self) -> None:
        """Close the client if this transport owns it (idempotent); a shared one stays open."""
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.__aexit__(None, None, None)

    async def post(self, connection_id: str, data: bytes) -> Outcome:
        if self.fast:
            return await self._send("POST", connection_id, data)
        try:
            await self.client.post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as exc:
            return _outcome_from_client_error(exc)
        except BotoCoreError as exc:
            raise _transport_error(exc) from exc
        return OK

    async def delete(self, connection_id: str) -> Outcome:
        if self.fast:
            return await self._send("DELETE", connection_id, None)
        try:
            response = await self.client.delete_connection(ConnectionId=connection_id)
        except ClientError as exc:
            return _outcome_from_client_error(exc)
        except BotoCoreError as exc:
            raise _transport_error(exc) from exc
        return Outcome(int(response["ResponseMetadata"]["HTTPStatusCode"]))

    async def get(self, connection_id: str) -> Outcome:
        """``GET @connections/{id}`` (the reaper's probe); the connection info is discarded."""
        if self.fast:
            return await self._send("GET", connection_id, None)
        try:
            response = await self.client.get_connection(ConnectionId=connection_id)
        except ClientError as exc:
            return _outcome_from_client_error(exc)
        except BotoCoreError as exc:
            raise _transport_error(exc) from exc
        return Outcome(int(response["ResponseMetadata"]["HTTPStatusCode"]))

    async def _send(self, method: str, connection_id: str, data: bytes | None) -> Outcome:
        quoted = quote(connection_id, safe="")
        credentials = await self._credentials.get_frozen_credentials()
        headers = self._signer.sign(method, quoted, data, credentials)
        headers["User-Agent"] = self._user_agent
        url = self._signer.url(quoted)
        if self._direct:
            return await self._send_direct(method, url, headers, data)
        # A plain dict is all aiobotocore's session reads (botocore's HTTPHeaders is slower).
        request = AWSPreparedRequest(method, url, cast(Any, headers), data, False)
        try:
            response = await self._http.send(request)
        except BotoCoreError as exc:
            raise _transport_error(exc) from exc
        status = int(response.status_code)
        if status < 300:
            return OK if status == 200 else Outcome(status)
        body = await response.content
        error_type = response.headers.get("x-amzn-errortype", "").split(":", 1)[0]
        return Outcome(status, error_type, _error_from_body(body))

    async def _send_direct(
        self, method: str, url: str, headers: dict[str, str], data: bytes | None
    ) -> Outcome:
        """Through the aiohttp session aiobotocore created for this client (same pool)."""
        session = self._session
        if session is None or session.closed:
            get_session = self._internals.get_session
            assert get_session is not None
            session = self._session = await get_session()
        headers["Accept-Encoding"] = "identity"
        try:
            async with session.request(
                method, URL(url, encoded=True), headers=headers, data=data
            ) as response:
                body = await response.read()
                status = response.status
                error_type = response.headers.get("x-amzn-errortype", "")
        except TimeoutError as exc:  # includes aiohttp's ServerTimeoutError
            raise TransportError("timeout", f"{method} {url}: {exc!r}") from exc
        except aiohttp.ClientError as exc:
            raise TransportError("connection", f"{method} {url}: {exc!r}") from exc
        if status < 300:
            return OK if status == 200 else Outcome(status)
        return Outcome(status, error_type.split(":", 1)[0], _error_from_body(body))


def _outcome_from_client_error(exc: ClientError) -> Outcome:
    """Status from ``ResponseMetadata`` (a bare 410/429 resolves to code "410"/"429")."""
    response: dict[str, Any] = dict(exc.response)
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    error = response.get("Error", {})
    code = str(error.get("Code", ""))
    if code == str(status):
        code = ""
    return Outcome(status, code, str(error.get("Message", "")))


def _transport_error(exc: BotoCoreError) -> TransportError:
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return TransportError("timeout", str(exc))
    return TransportError("connection", str(exc))
