"""A local API Gateway endpoint for provisioning tests: moto plus what moto lacks.

moto (server mode) implements most of ``apigatewayv2`` but answers 404/500 for
``CreateDeployment``, ``GetDeployments``, ``UpdateStage`` and ``GetRouteResponses``, and its
``CreateDomainName`` omits the ``ApiGatewayDomainName``/``HostedZoneId`` outputs. This small
aiohttp server sits in front of moto on 127.0.0.1: it answers those operations itself (with
AWS's wire shapes), forwards everything else to moto unchanged, records every request, and can
inject failures or hold a request, so one ``endpoint_url`` serves the whole flow.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aiohttp import ClientSession, web

GATEWAY_ZONE = "Z1UJRXOUMOOFQ8"  # API Gateway's regional hosted zone in us-east-1


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    code: str
    times: int


@dataclass
class Hold:
    method: str
    path: re.Pattern[str]
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LocalApiGateway:
    """The endpoint; see the module docstring."""

    def __init__(self, moto_url: str) -> None:
        self.moto_url = moto_url
        self.url = ""
        self.requests: list[tuple[str, str, Any]] = []
        self.deployments: dict[str, list[dict[str, Any]]] = {}
        self.stages: dict[tuple[str, str], dict[str, Any]] = {}
        self.route_responses: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.faults: list[Fault] = []
        self.holds: list[Hold] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._session: ClientSession | None = None

    # --- control from tests ---------------------------------------------------------------

    def fail(
        self,
        method: str,
        path: str,
        *,
        status: int = 400,
        code: str = "BadRequestException",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with an AWS error."""
        self.faults.append(Fault(method, re.compile(path), status, code, times))

    def hold(self, method: str, path: str) -> Hold:
        """Stall matching requests until ``hold.release`` is set."""
        hold = Hold(method, re.compile(path))
        self.holds.append(hold)
        return hold

    def calls(self, method: str, path: str) -> list[Any]:
        pattern = re.compile(path)
        return [body for m, p, body in self.requests if m == method and pattern.fullmatch(p)]

    # --- server ----------------------------------------------------------------------------

    def start(self) -> None:
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def boot() -> None:
                self._session = ClientSession()
                app = web.Application(client_max_size=10 * 1024 * 1024)
                app.router.add_route("*", "/{tail:.*}", self.handle)
                self._runner = web.AppRunner(app, access_log=None)
                await self._runner.setup()
                site = web.TCPSite(self._runner, "127.0.0.1", 0)
                await site.start()
                port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                self.url = f"http://127.0.0.1:{port}"

            loop.run_until_complete(boot())
            started.set()
            loop.run_forever()

            async def shutdown() -> None:
                assert self._runner is not None
                assert self._session is not None
                await self._runner.cleanup()
                await self._session.close()

            loop.run_until_complete(shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        started.wait(10)

    def stop(self) -> None:
        for hold in self.holds:
            hold.release.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body
        self.requests.append((request.method, path, parsed))
        for fault in self.faults:
            if fault.times > 0 and fault.method == request.method and fault.path.fullmatch(path):
                fault.times -= 1
                return web.json_response(
                    {"message": f"injected {fault.code}"},
                    status=fault.status,
                    headers={"x-amzn-errortype": fault.code},
                )
        for hold in self.holds:
            if hold.method == request.method and hold.path.fullmatch(path):
                hold.entered.set()
                await asyncio.get_running_loop().run_in_executor(None, hold.release.wait, 30)
        return await self.route(request, path, body, parsed)

    async def route(
        self, request: web.Request, path: str, body: bytes, parsed: Any
    ) -> web.StreamResponse:
        method = request.method
        if m := re.fullmatch(r"/v2/apis/([^/]+)/deployments", path):
            api_id = m.group(1)
            if method == "POST":
                deployment = {
                    "deploymentId": uuid.uuid4().hex[:8],
                    "deploymentStatus": "DEPLOYED",
                    "createdDate": _now(),
                    "description": (parsed or {}).get("description", ""),
                }
                self.deployments.setdefault(api_id, []).append(deployment)
                stage = (parsed or {}).get("stageName")
                if stage:
                    self.stages.setdefault((api_id, stage), {})["deploymentId"] = deployment[
                        "deploymentId"
                    ]
                return web.json_response(deployment, status=201)
            return web.json_response({"items": self.deployments.get(api_id, [])})
        if (m := re.fullmatch(r"/v2/apis/([^/]+)/stages/([^/]+)", path)) and method == "PATCH":
            self.stages.setdefault((m.group(1), m.group(2)), {}).update(parsed or {})
            status, payload, headers = await self.forward("GET", path, b"", request)
            return self.respond(status, self.patch_stage(m.group(1), m.group(2), payload), headers)
        if (m := re.fullmatch(r"/v2/apis/([^/]+)/routes/([^/]+)/routeresponses", path)) and (
            method == "GET"
        ):
            items = self.route_responses.get((m.group(1), m.group(2)), [])
            return web.json_response({"items": items})
        status, payload, headers = await self.forward(method, request.path_qs, body, request)
        if (m := re.fullmatch(r"/v2/apis/([^/]+)/stages/([^/]+)", path)) and status == 200:
            payload = self.patch_stage(m.group(1), m.group(2), payload)
        elif (m := re.fullmatch(r"/v2/apis/([^/]+)/routes/([^/]+)/routeresponses", path)) and (
            status < 300
        ):
            self.route_responses.setdefault((m.group(1), m.group(2)), []).append(payload)
        elif (
            m := re.fullmatch(r"/v2/apis/([^/]+)/routes/([^/]+)/routeresponses/([^/]+)", path)
        ) and method == "DELETE":
            key = (m.group(1), m.group(2))
            self.route_responses[key] = [
                r for r in self.route_responses.get(key, []) if r["routeResponseId"] != m.group(3)
            ]
        elif re.fullmatch(r"/v2/domainnames(/[^/]+)?", path) and status < 300 and payload:
            for config in payload.get("domainNameConfigurations", []):
                name = payload.get("domainName", "")
                config.setdefault(
                    "apiGatewayDomainName",
                    f"d-{uuid.uuid5(uuid.NAMESPACE_DNS, name).hex[:10]}"
                    ".execute-api.us-east-1.amazonaws.com",
                )
                config.setdefault("hostedZoneId", GATEWAY_ZONE)
                config.setdefault("domainNameStatus", "AVAILABLE")
        return self.respond(status, payload, headers)

    def patch_stage(self, api_id: str, stage: str, payload: Any) -> Any:
        if isinstance(payload, dict):
            payload.update(self.stages.get((api_id, stage), {}))
        return payload

    async def forward(
        self, method: str, path_qs: str, body: bytes, request: web.Request
    ) -> tuple[int, Any, dict[str, str]]:
        assert self._session is not None
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in {"host", "content-length"}
        }
        async with self._session.request(
            method, self.moto_url + path_qs, data=body, headers=headers
        ) as response:
            raw = await response.read()
            keep = {
                k: v
                for k, v in response.headers.items()
                if k.lower() in {"x-amzn-errortype", "x-amzn-requestid"}
            }
            try:
                return response.status, (json.loads(raw) if raw else None), keep
            except ValueError:
                return response.status, raw.decode(errors="replace"), keep

    @staticmethod
    def respond(status: int, payload: Any, headers: dict[str, str]) -> web.Response:
        if payload is None:
            return web.Response(status=status, headers=headers)
        if isinstance(payload, str):
            return web.Response(status=status, text=payload, headers=headers)
        return web.json_response(payload, status=status, headers=headers)


@pytest.fixture
def local_apigw(moto: str) -> Iterator[LocalApiGateway]:
    endpoint = LocalApiGateway(moto)
    endpoint.start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


SECRET = "s3cret-value-for-tests-0123456789abcdef"


@pytest.fixture
def provisioning_settings(aws_settings: Any, local_apigw: LocalApiGateway) -> Any:
    """AWS settings with apigatewayv2 through the local endpoint and a gateway secret."""
    aws_settings.AWS_WS_ASYNC = {
        **aws_settings.AWS_WS_ASYNC,
        "apigateway_endpoint_url": local_apigw.url,
        "gateway_secret": [SECRET],
    }
    return aws_settings


@pytest.fixture
def moto_apigw(moto: str) -> Any:
    """A plain boto3 client straight to moto, to inspect or change AWS behind our back."""
    return boto3.client(
        "apigatewayv2",
        endpoint_url=moto,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def moto_route53(moto: str) -> Any:
    return boto3.client(
        "route53",
        endpoint_url=moto,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def new_gateway(db: None) -> Any:
    """An unprovisioned gateway row with one additional route."""
    from aws_ws_async.models import ApiGateway, ApiGatewayAdditionalRoute

    gateway = ApiGateway.objects.create(
        api_name="Chat API",
        api_description="chat",
        stage_name="production",
        stage_description="live",
        target_base_endpoint="https://backend.example.com/ws/",
        tags={"team": "web"},
    )
    ApiGatewayAdditionalRoute(
        api_gateway=gateway,
        name="Send",
        route_key="sendmessage",
        integration_url="https://backend.example.com/ws/sendmessage",
    ).save(push_to_aws=False)
    return gateway
