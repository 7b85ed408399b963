"""The runtime's 10,000-event no-loss test under role credentials (issue 13, "Done means").

The server is configured from ``jelmore-infra permissions`` for the topology (plus a load-test
consumer group with a short ack wait, so the killed worker's events come back quickly): the
applier applies the topology, the events are published as ``publisher``, the three workers run as
``worker:load_workers`` (their credentials from ``NATS_USER``/``NATS_PASSWORD``, as a deployed
service would have them) and leave the dead-letter router to ``jelmore-infra events dlq route``
running as ``router``. One worker is SIGKILLed with at least a third of the events unhandled;
every event ends handled or dead-lettered, never both.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.runtime import Runtime
from tests.support.cli import REPO, run_cli
from tests.support.natsserver import NatsServer, binary_for
from tests.support.roles import (
    admin_url,
    fast_topology,
    generated_config,
    password_of,
    user_of,
    users_block,
)
from tests.support.workers import Workers, ten_thousand_events_with_a_worker_killed

GROUP = "load_workers"
ROLES = ("publisher", f"worker:{GROUP}", "router", "applier")
LOAD_GROUP = f"""
  {GROUP}:
    description: The no-loss test's workers
    stream: JELMORE
    filter_subjects: [jelmore.session.output]
    ack_policy: explicit
    ack_wait: 2s
    max_deliver: 3
    max_ack_pending: 1000
    jelmore:
      retry_delays: [100ms, 200ms, 400ms]
      dead_letter:
        stream: JELMORE_DLQ
        subject: jelmore.dlq.{GROUP}
"""


def auth(role: str) -> list[str]:
    return ["--user", user_of(role), "--password", password_of(role)]


def start_router(url: str) -> subprocess.Popen[str]:
    """``jelmore-infra events dlq route`` as ``router``, running in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "jelmore_infra", "events", "dlq", "route", "-s", url,
         *auth("router")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip


@pytest.fixture(params=["2.10.26", "2.15.1"])
def enforcing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NatsServer]:
    """A server enforcing the generated roles, with the topology applied by the applier."""
    topology = fast_topology(tmp_path / "topology")
    groups = topology / "consumer_groups.yaml"
    groups.write_text(groups.read_text() + LOAD_GROUP)
    config, variables = generated_config(topology, ROLES)
    with NatsServer(
        binary=binary_for(request.param), config=config + users_block(variables)
    ) as server:
        applied = run_cli(
            "apply", "--auto-approve", "--topology", str(topology), "-s", server.url,
            *auth("applier"),
        )  # fmt: skip
        assert applied.returncode == 0, applied.stderr
        yield server


@pytest.mark.slow
async def test_ten_thousand_events_under_role_credentials_with_a_worker_killed_lose_none(
    enforcing: NatsServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    version = request.node.callspec.params["enforcing"]
    worker_role = f"worker:{GROUP}"
    credentials = {"NATS_USER": user_of(worker_role), "NATS_PASSWORD": password_of(worker_role)}
    workers = Workers(enforcing.url, tmp_path, env=credentials)
    router = start_router(enforcing.url)
    publisher = ConnectionSettings(
        url=enforcing.url, user=user_of("publisher"), password=password_of("publisher")
    )
    try:
        async with Runtime(connection=publisher) as runtime:
            counts = await ten_thousand_events_with_a_worker_killed(
                workers,
                GROUP,
                runtime.publish_events,
                read_url=admin_url(enforcing.port),
                worker_args=["--no-router"],
            )
        print(f"\n(roles, {version}) {counts}")
    finally:
        workers.stop_all()
        router.send_signal(signal.SIGTERM)
        out, err = router.communicate(timeout=60)
    assert router.returncode == 0, err
    assert "event(s) routed to the dead-letter queue" in out
    print(f"(roles, {version}) router: {out.strip()}")
    assert "ermissions violation" not in err
