"""Fixtures for the runtime test modules (``test_runtime_*.py``).

``server``: one nats-server per test module holding the provisioned Jelmore topology, once on the
oldest and once on the newest supported server version (a module that defines its own ``server``
fixture overrides this one). ``url``: the default runtime configured against it, with fresh
metrics, closed after each test. ``nc`` (a plain nats-py client) and ``api`` (the plan side's
JetStream API client) connect to whichever ``server`` the requesting module uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from nats.aio.client import Client

from jelmore_infra import runtime
from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.live.jsapi import JetStreamAPI
from jelmore_infra.runtime import metrics
from tests.support.natsserver import NatsServer, binary_for
from tests.support.runtime_topology import provision

#: The runtime's behaviour is tested on the oldest and the newest supported server.
RUNTIME_VERSIONS = ("2.10.26", "2.15.1")


@pytest.fixture(scope="module", params=RUNTIME_VERSIONS)
def server(request: pytest.FixtureRequest) -> Iterator[NatsServer]:
    with NatsServer(binary=binary_for(request.param)) as srv:
        provision(srv.url)
        yield srv


@pytest.fixture
async def url(server: NatsServer) -> AsyncIterator[str]:
    metrics.reset()
    runtime.configure(url=server.url, client_id="test-runtime")
    yield server.url
    await runtime.close()


@pytest.fixture
async def nc(server: NatsServer) -> AsyncIterator[Client]:
    client = await nats.connect(server.url)
    yield client
    await client.close()


@pytest.fixture
async def api(server: NatsServer) -> AsyncIterator[JetStreamAPI]:
    client = await JetStreamAPI.connect(ConnectionSettings(url=server.url))
    yield client
    await client.close()
