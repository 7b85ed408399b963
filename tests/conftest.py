"""Shared fixtures: real nats-server processes (single and clustered) and the CLI runner."""

from __future__ import annotations

import sys
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
def _shared_clusters() -> Iterator[list[NatsCluster]]:
    """The session's 3-node cluster (a list, so a broken one can be replaced); stopped at the end."""
    clusters = [NatsCluster().start()]
    try:
        yield clusters
    finally:
        for cluster in clusters:
            cluster.cleanup()


@pytest.fixture
def nats_cluster(_shared_clusters: list[NatsCluster]) -> NatsCluster:
    """A 3-node JetStream cluster on loopback, shared by the session, that can place an R3
    stream when the test starts.

    A CI run saw the shared cluster stop placing replicated streams ("peer offline") for the rest
    of the session; a test must not inherit that. A cluster that fails the check is reported on
    stderr, with what each node was doing, and replaced by a fresh one.
    """
    cluster = _shared_clusters[-1]
    if not cluster.healthy():
        print(f"\nreplacing the shared cluster, which could not place an R3 stream: "
              f"{cluster.describe()}", file=sys.stderr)  # fmt: skip
        cluster.cleanup()
        _shared_clusters.append(NatsCluster().start())
    return _shared_clusters[-1]


@pytest.fixture(scope="session", autouse=True)
def _no_server_left_running() -> Iterator[None]:
    """The session's safety net: after every other fixture stopped its servers, kill any server
    still running and fail with an error naming how many.

    A fixture rather than a ``pytest_sessionfinish`` hook, so that the error is reported as a
    test error and fails the run also under pytest-xdist, whose workers' exit statuses the
    controller does not take over.
    """
    yield
    leftovers = running_processes()
    if leftovers:  # pragma: no cover - reported only when a fixture failed to clean up
        for proc in leftovers:
            proc.kill()
        pytest.fail(f"{len(leftovers)} nats-server process(es) were left running", pytrace=False)
