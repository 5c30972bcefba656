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
from aws_ws_async.delivery.transport import OK, Outcome, TransportError

logger = logging.getLogger("aws_ws_async.delivery")


def _error_from_body(body: bytes) -> str:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(parsed, dict):
        return str(parsed.get("message") or parsed.get("Message") or "")
    return ""


class AiobotocoreTransport:
    """Posts through one aiobotocore client (one endpoint: one API and stage)."""

    def __init__(self, client: Any, *, fast: bool = True, direct: bool = True) -> None:
        self.client = client
        self._want_direct = direct
        self.endpoint_url: str = str(client.meta.endpoint_url).rstrip("/")
        self._prefix = f"{self.endpoint_url}/@connections/"
        self.fast = fast and self._prepare_fast_path()

    def _prepare_fast_path(self) -> bool:
        try:
            self._http = self.client._endpoint.http_session
            self._credentials = self.client._request_signer._credentials
            signing_name = self.client.meta.service_model.signing_name
            region = self.client.meta.region_name
            self._user_agent = self.client._user_agent_creator.to_string()
        except AttributeError:
            logger.info("aiobotocore internals changed; using client.post_to_connection")
            return False
        if self._credentials is None or not region:
            return False
        self._signer = ConnectionsSigner(self.endpoint_url, region, signing_name)
        # The client's own aiohttp session (its pool and timeouts) can be used directly when no
        # proxy is configured; otherwise requests go through aiobotocore's ``send``.
        self._direct = (
            self._want_direct
            and hasattr(self._http, "_get_session")
            and not (
                self._http._proxy_config.proxy_url_for(self.endpoint_url)
                if hasattr(self._http, "_proxy_config")
                else True
            )
        )
        self._session: Any = None
        return True

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
            session = self._session = await self._http._get_session(None)
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
