"""Shared fixtures: real nats-server processes (single and clustered) and the CLI runner."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.natsserver import NatsCluster, NatsServer, running_processes


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    """A fresh single JetStream server on free ports with a temporary store."""
    with NatsServer() as server:
        yield server


@pytest.fixture(scope="module")
def shared_nats_server() -> Iterator[NatsServer]:
    """One JetStream server shared by a test module (tests must clean up what they create)."""
    with NatsServer() as server:
        yield server


@pytest.fixture(scope="session")
def nats_cluster() -> Iterator[NatsCluster]:
    """A 3-node JetStream cluster on loopback, shared by the session."""
    with NatsCluster() as cluster:
        yield cluster


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leftovers = running_processes()
    if leftovers:  # pragma: no cover - reported only when a fixture failed to clean up
        for proc in leftovers:
            proc.kill()
        print(f"\nERROR: {len(leftovers)} nats-server process(es) were left running")
        session.exitstatus = 1
