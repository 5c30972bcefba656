"""Property tests: random requests at every route never get a 5xx and never write on refusal.

Each test starts from a realistic API Gateway request and lets hypothesis mutate the method,
drop or garble headers, add headers, and pick query strings and bodies (huge, invalid JSON,
non-objects, deep nesting, unicode, trailing newlines). "Nothing written" means: no session
row created, changed or closed, and no token spent. Refused ``$connect`` attempts *are*
recorded in the rate-limit table: counting them is the point of that table.

The number of examples run per route is printed at the end of each test (``-s``).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aws_ws_async.models import WebSocketSession, WebSocketToken
from aws_ws_async.models.tokens import digest_token
from tests.fixtures_views import (
    Browser,
    connect,
    gateway_headers,
    new_connection_id,
    post,
)

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = 200
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
RAN: Counter[str] = Counter()
STATUSES: dict[str, Counter[int]] = {}

latin1 = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=60)
header_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-",
    min_size=1,
    max_size=20,
)
methods = st.one_of(
    st.just("POST"),
    st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "post", "BREW"]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
handler_names = st.sampled_from(
    [
        "echo",
        "sync_echo",
        "nothing",
        "change_channel",
        "default",
        "connect",
        "dispatch",
        "_private",
        "static_helper",
        "after_connect",
        "send_after_connect",
        "nope",
        "",
        "echo\n",
    ]
) | st.text(max_size=12)
messages = st.fixed_dictionaries(
    {},
    optional={
        "action": handler_names | json_values,
        "handler": handler_names | json_values,
        "channel": st.sampled_from(["room", "room-2", "room\n", "", "a" * 129, "x.y"])
        | json_values,
        "message": json_values,
    },
)
valid_messages = st.fixed_dictionaries(
    {"action": st.sampled_from(["echo", "sync_echo", "nothing", "change_channel", "whoami"])},
    optional={"channel": st.sampled_from(["room", "room-2", "room\n"]), "message": json_values},
)
bodies = st.one_of(
    valid_messages.map(lambda d: json.dumps(d).encode()),
    messages.map(lambda d: json.dumps(d).encode()),
    messages.map(lambda d: (json.dumps(d) + "\n").encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(min_value=1, max_value=4096).map(lambda n: b"x" * (128 * 1024 + n)),
    st.integers(min_value=100, max_value=30000).map(lambda n: b"[" * n),
    st.just(b""),
)
queries = st.one_of(
    st.just(""),
    latin1.map(lambda t: t.replace(" ", "%20")),
    st.sampled_from(
        ["channel=room%0A", "channel=%00", "channel=" + "a" * 300, "ws_token=zz&channel=ok"]
    ),
)


def mutate_headers(draw: st.DrawFn, headers: dict[str, str]) -> dict[str, str]:
    """Half of the requests keep API Gateway's headers intact, so the fuzz reaches the routes."""
    result = dict(headers)
    if draw(st.booleans()):
        return result
    for name in draw(st.lists(st.sampled_from(sorted(headers)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del result[name]
        else:
            result[name] = draw(latin1)
    for name, value in draw(st.dictionaries(header_names, latin1, max_size=3)).items():
        result[name] = value
    return result


@st.composite
def requests(draw: st.DrawFn, connect_route: bool) -> tuple[str, dict[str, str], bytes, str]:
    headers = gateway_headers("PLACEHOLDER", connect=connect_route)
    del headers["Connectionid"]
    method = draw(methods)
    body = draw(bodies)
    # Explicit, so it can be garbled, empty (not sent) or lie; if dropped, ``post`` adds it.
    headers["Content-Length"] = str(len(body))
    return method, mutate_headers(draw, headers), body, draw(queries)


async def snapshot() -> list[tuple[str, str, bool]]:
    return [
        row
        async for row in WebSocketSession.objects.order_by("pk").values_list(
            "connection_id", "channel_name", "connected"
        )
    ]


@pytest.fixture
def report_examples(request: Any) -> Any:
    yield
    name = request.node.name
    statuses = dict(sorted(STATUSES.get(name, Counter()).items()))
    print(f"\nhypothesis examples run for {name}: {RAN[name]}; statuses {statuses}")
    # The generator must reach past the first checks, or the test proves little.
    assert len(statuses) >= 4, statuses


# --- $connect ------------------------------------------------------------------------------


@FUZZ
@given(data=st.data(), req=requests(connect_route=True))
async def test_fuzz_connect(
    ws_settings: Any, gateway: Any, browser: Browser, report_examples: None, data: Any, req: Any
) -> None:
    RAN["test_fuzz_connect"] += 1
    method, headers, body, query = req
    valid = new_connection_id()
    cid = data.draw(st.sampled_from([valid, valid, valid, "bad id", "x" * 200, ""]))
    headers.setdefault("Connectionid", cid)
    token = await browser.anew_token()
    if data.draw(st.integers(0, 3)):
        headers["Cookie"] = browser.cookie()
        query = f"{query}&ws_token={token}" if query else f"ws_token={token}"
    before = await snapshot()
    response = await post("/ws/connect", headers, body, method=method, query=query)
    STATUSES.setdefault(_test_name(), Counter())[response.status_code] += 1
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert await snapshot() == before
        assert not (await WebSocketToken.objects.aget(token=digest_token(token))).used
    else:
        assert len(await snapshot()) == len(before) + 1


# --- messages ------------------------------------------------------------------------------


@FUZZ
@given(req=requests(connect_route=False))
async def test_fuzz_message(
    ws_settings: Any, gateway: Any, browser: Browser, report_examples: None, req: Any
) -> None:
    RAN["test_fuzz_message"] += 1
    cid = await _connected(browser)
    method, headers, body, query = req
    headers.setdefault("Connectionid", cid)
    before = await snapshot()
    response = await post("/ws/default", headers, body, method=method, query=query)
    STATUSES.setdefault(_test_name(), Counter())[response.status_code] += 1
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert await snapshot() == before


# --- $disconnect ---------------------------------------------------------------------------


@FUZZ
@given(req=requests(connect_route=False))
async def test_fuzz_disconnect(
    ws_settings: Any, gateway: Any, browser: Browser, report_examples: None, req: Any
) -> None:
    RAN["test_fuzz_disconnect"] += 1
    cid = await _connected(browser)
    method, headers, body, query = req
    headers.setdefault("Connectionid", cid)
    before = await snapshot()
    response = await post("/ws/disconnect", headers, body, method=method, query=query)
    STATUSES.setdefault(_test_name(), Counter())[response.status_code] += 1
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert await snapshot() == before
    else:
        assert not (await WebSocketSession.objects.aget(connection_id=cid)).connected


def _test_name() -> str:
    import inspect

    frame = inspect.currentframe()
    assert frame is not None
    assert frame.f_back is not None
    return frame.f_back.f_code.co_name


async def _connected(browser: Browser) -> str:
    """One session reused by every example (reopened if an example closed it)."""
    session = await WebSocketSession.objects.order_by("pk").afirst()
    if session is None:
        cid = new_connection_id()
        assert (await connect(browser, cid, channel="room")).status_code == 200
        return cid
    await WebSocketSession.objects.filter(pk=session.pk).aupdate(
        connected=True, channel_name="room"
    )
    return session.connection_id


# --- token view ----------------------------------------------------------------------------


@FUZZ
@given(
    method=methods,
    extra=st.dictionaries(header_names, latin1, max_size=4),
    body=bodies,
    query=queries,
    csrf=st.sampled_from(["good", "none", "bad"]),
    cookies=st.sampled_from(["session", "none", "garbage"]),
)
async def test_fuzz_token_view(
    settings: Any,
    browser: Browser,
    report_examples: None,
    method: str,
    extra: dict[str, str],
    body: bytes,
    query: str,
    csrf: str,
    cookies: str,
) -> None:
    RAN["test_fuzz_token_view"] += 1
    secret = "C" * 32
    headers = {"Host": "testserver", "Content-Type": "application/json", **extra}
    cookie_jar = {
        "session": f"{browser.cookie()}; csrftoken={secret}",
        "none": "",
        "garbage": "sessionid=%%%; csrftoken=\x7f",
    }
    if cookie_jar[cookies]:
        headers["Cookie"] = cookie_jar[cookies]
    if csrf != "none":
        headers["X-CSRFToken"] = secret if csrf == "good" else "D" * 32
    before = await WebSocketToken.objects.acount()
    response = await post("/ws-token/", headers, body, method=method, query=query)
    STATUSES.setdefault(_test_name(), Counter())[response.status_code] += 1
    assert response.status_code < 500, response.content
    after = await WebSocketToken.objects.acount()
    if response.status_code == 200:
        assert after == before + 1
        assert len(response.json()["token"]) == 64
    else:
        assert after == before
