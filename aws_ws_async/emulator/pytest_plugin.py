"""pytest fixtures that run the emulator, for this project's tests and for users' own.

Enable them in a ``conftest.py``::

    pytest_plugins = ["aws_ws_async.emulator.pytest_plugin"]

``ws_gateway_emulator_factory`` starts emulators (each on its own thread and loop, so sync and
async tests both work) and stops them after the test. ``ws_gateway_emulator`` is one emulator in
front of pytest-django's ``live_server`` at ``/ws/``; override ``ws_gateway_emulator_config`` to
point it elsewhere, e.g. at an ASGI server from ``asgi_server_factory`` (needed when views leave
work on the event loop, such as ``send_after_connect``)::

    @pytest.fixture
    def ws_gateway_emulator_config(asgi_server_factory):
        from django.core.asgi import get_asgi_application

        server = asgi_server_factory(get_asgi_application())
        return EmulatorConfig(f"{server.url}/ws/")
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aws_ws_async.emulator.asgi_thread import AsgiServerThread
from aws_ws_async.emulator.config import EmulatorConfig
from aws_ws_async.emulator.server import EmulatorThread

EmulatorFactory = Callable[..., EmulatorThread]


@pytest.fixture
def ws_gateway_emulator_factory() -> Iterator[EmulatorFactory]:
    """``factory(config=None, *, host=..., port=0, **config_fields)`` -> a running emulator."""
    started: list[EmulatorThread] = []

    def factory(
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **fields: Any,
    ) -> EmulatorThread:
        if config is None:
            config = EmulatorConfig(**fields)
        elif fields:
            raise TypeError("pass either a config or its fields, not both")
        emulator = EmulatorThread(config, host=host, port=port).start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in reversed(started):
        emulator.stop()


@pytest.fixture
def ws_gateway_emulator_config(request: pytest.FixtureRequest) -> EmulatorConfig:
    """The default emulator fronts pytest-django's ``live_server`` with integrations at ``/ws/``."""
    live_server = request.getfixturevalue("live_server")
    return EmulatorConfig(target_base_url=f"{live_server.url}/ws/")


@pytest.fixture
def ws_gateway_emulator(
    ws_gateway_emulator_config: EmulatorConfig, ws_gateway_emulator_factory: EmulatorFactory
) -> EmulatorThread:
    """A running emulator; ``.url`` for clients, ``.management_url`` for ``@connections``.

    The configuration (and any backend server it starts) is set up first, so the emulator stops
    first and its ``$disconnect`` posts still reach the backend.
    """
    return ws_gateway_emulator_factory(ws_gateway_emulator_config)


AsgiServerFactory = Callable[..., AsgiServerThread]


@pytest.fixture
def asgi_server_factory() -> Iterator[AsgiServerFactory]:
    """``factory(app, *, host="127.0.0.1", port=0, before_stop=None)`` -> a running server.

    ``before_stop`` is an async callable run on the server's loop before it stops; Django tests
    pass ``sync_to_async(django.db.connections.close_all)`` so the test database can be dropped.
    Tests using it with a database need ``django_db(transaction=True)``.
    """
    started: list[AsgiServerThread] = []

    def factory(app: Any, **kwargs: Any) -> AsgiServerThread:
        server = AsgiServerThread(app, **kwargs).start()
        started.append(server)
        return server

    yield factory
    for server in reversed(started):
        server.stop()
