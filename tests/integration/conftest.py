"""Fixtures for the runtime test modules (``test_runtime_*.py``).

``server``: one nats-server per test module holding the provisioned Jelmore topology (a module
that defines its own ``server`` fixture overrides this one). ``url``: the runtime configured
against it, with fresh metrics, closed after each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from jelmore_infra import runtime
from jelmore_infra.runtime import metrics
from tests.support.natsserver import NatsServer
from tests.support.runtime_topology import provision


@pytest.fixture(scope="module")
def server() -> Iterator[NatsServer]:
    with NatsServer() as srv:
        provision(srv.url)
        yield srv


@pytest.fixture
async def url(server: NatsServer) -> AsyncIterator[str]:
    metrics.reset()
    runtime.configure(url=server.url, client_id="test-runtime")
    yield server.url
    await runtime.close()
