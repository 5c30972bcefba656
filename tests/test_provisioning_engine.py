"""The provisioning engine on its own: plain values in, steps out, no database at all.

These tests use no ``db`` fixture: a database query anywhere in the engine would fail them
(pytest-django blocks database access), which is what "provisioning knows no Django" means in
practice. The steps go to a recorder that keeps them in a list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from aws_ws_async.exceptions import ApiGatewaySyncError
from aws_ws_async.provisioning import (
    GatewayState,
    Run,
    Step,
    acreate_api,
    adetect_drift,
    aplan_push,
    apull,
    apush,
    build_spec,
)
from tests.fixtures_provisioning import LocalApiGateway

BASE = "https://backend.example.com/ws/"


class ListRecorder:
    """Keeps every step; ``refuse`` names a step it raises on (a lost claim, say)."""

    def __init__(self, refuse: str = "") -> None:
        self.steps: list[tuple[str, dict[str, Any]]] = []
        self.refuse = refuse

    async def record(self, step: str, values: Mapping[str, Any]) -> None:
        if step == self.refuse:
            raise ApiGatewaySyncError(f"refused {step}")
        self.steps.append((step, dict(values)))

    def names(self) -> list[str]:
        return [name for name, _values in self.steps]


def spec(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "name": "Engine API",
        "description": "plain values",
        "target_base_endpoint": BASE,
        "stage_name": "production",
        "additional_routes": [("sendmessage", BASE + "sendmessage")],
        "tags": {"team": "web"},
    }
    return build_spec(**{**values, **overrides})


async def test_create_records_every_step_in_order_and_resumes_from_the_state(
    provisioning_settings: Any, moto_apigw: Any
) -> None:
    recorder = ListRecorder()
    state = GatewayState(label="engine test")
    steps = await acreate_api(spec(), Run(state, recorder))

    names = recorder.names()
    assert names[0] == Step.API_CREATED
    assert names[-1] == Step.DEPLOYED
    assert names.index(Step.ROUTES_CREATED) < names.index(Step.DEPLOYED)
    assert (Step.ROUTE_DEPLOYED, "sendmessage") in [
        (n, v.get("route_key")) for n, v in recorder.steps
    ]
    assert state.api_id == recorder.steps[0][1]["api_id"]
    assert state.deployment_id == recorder.steps[-1][1]["deployment_id"]
    assert set(state.route_records()) == {"$connect", "$disconnect", "$default", "sendmessage"}
    assert any(s.startswith("deployed ") for s in steps)
    routes = moto_apigw.get_routes(ApiId=state.api_id)["Items"]
    assert {r["RouteKey"] for r in routes} == {"$connect", "$disconnect", "$default", "sendmessage"}

    # A second run from the recorded state creates no second API, no route twice.
    again = ListRecorder()
    await acreate_api(spec(), Run(state, again))
    assert Step.API_CREATED not in again.names()
    assert len(moto_apigw.get_apis()["Items"]) == 1
    assert len(moto_apigw.get_routes(ApiId=state.api_id)["Items"]) == 4

    # Drift, a planned push and the push itself compare the same plain spec with AWS.
    changed = spec(description="changed")
    assert [d.field for d in await adetect_drift(changed, state)] == ["api_description"]
    assert [d.field for d in await aplan_push(changed, state)] == ["api_description"]
    pushed = ListRecorder()
    diffs = await apush(changed, Run(state, pushed))
    assert [d.field for d in diffs] == ["api_description"]
    assert pushed.names() == [Step.REDEPLOYED]
    assert moto_apigw.get_api(ApiId=state.api_id)["Description"] == "changed"
    assert await adetect_drift(changed, state) == []


async def test_a_recorder_that_refuses_stops_the_run_before_the_next_aws_call(
    provisioning_settings: Any, local_apigw: LocalApiGateway
) -> None:
    recorder = ListRecorder(refuse=Step.ROUTES_CREATED)
    state = GatewayState()
    with pytest.raises(ApiGatewaySyncError, match="refused routes_created"):
        await acreate_api(spec(), Run(state, recorder))
    assert state.api_id  # what was recorded before the refusal is in the state
    assert local_apigw.calls("POST", f"/v2/apis/{state.api_id}/stages") == []
    assert Step.DEPLOYED not in recorder.names()


async def test_pull_turns_aws_into_plain_values(
    provisioning_settings: Any, moto_apigw: Any
) -> None:
    state = GatewayState()
    await acreate_api(spec(), Run(state, ListRecorder()))
    integration = moto_apigw.create_integration(
        ApiId=state.api_id,
        IntegrationType="HTTP_PROXY",
        IntegrationMethod="POST",
        IntegrationUri=BASE + "byhand",
    )
    moto_apigw.create_route(
        ApiId=state.api_id,
        RouteKey="byhand",
        Target=f"integrations/{integration['IntegrationId']}",
    )
    moto_apigw.update_api(ApiId=state.api_id, Description="edited in AWS")

    diffs, pulled = await apull(spec(), state)

    assert {d.field for d in diffs} >= {"api_description", "exists"}
    assert pulled.fields["api_description"] == "edited in AWS"
    assert pulled.fields["target_base_endpoint"] == BASE
    assert {r.route_key: r.integration_url for r in pulled.routes} == {
        "sendmessage": BASE + "sendmessage",
        "byhand": BASE + "byhand",
    }
    assert "byhand" in pulled.route_records
