"""The plan's live read ahead in a child process (jelmore_infra.live.ahead), without a server.

The child's read against a live server is covered by every ``plan`` integration test; here: its
errors reach the parent only when asked for, and no child outlives the ``with`` block.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import ConnectionFailed, JelmoreError, JetStreamAPIError
from jelmore_infra.live.ahead import ReadAhead, _dumps, _portable
from jelmore_infra.model import LiveConsumer, LiveEvent, LiveState, LiveStream, ServerIdentity

#: Nothing listens on port 1 of the loopback address: every connection attempt is refused.
UNREACHABLE = ConnectionSettings(url="nats://127.0.0.1:1", timeout=2.0)


def reaped(pid: int) -> bool:
    """True when ``pid`` is no child of this process any more (it was waited for)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.fixture
def silent_server() -> Iterator[ConnectionSettings]:
    """A TCP port that accepts connections and never says a word (a read that never ends)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        yield ConnectionSettings(url=f"nats://127.0.0.1:{port}", timeout=30.0)


def test_a_read_ahead_that_cannot_connect_raises_its_error_when_the_result_is_asked_for() -> None:
    with ReadAhead(UNREACHABLE, None) as ahead:
        pid = ahead._pid
        with pytest.raises(JelmoreError, match=r"cannot connect to nats://127\.0\.0\.1:1"):
            ahead.result()
    assert pid is not None and reaped(pid)


def leave_early(settings: ConnectionSettings, error: BaseException) -> int:
    """Start a read ahead, leave its block with ``error`` (caught here); the child's pid."""
    pid = None
    try:
        with ReadAhead(settings, ["ORDERS"]) as ahead:
            pid = ahead._pid
            raise error
    except type(error):
        pass
    assert pid is not None
    return pid


def test_an_error_while_the_topology_loads_wins_and_the_child_is_killed_and_reaped(
    silent_server: ConnectionSettings,
) -> None:
    assert reaped(leave_early(silent_server, ValueError("broken topology")))


def test_an_interrupt_while_the_topology_loads_leaves_no_child_behind(
    silent_server: ConnectionSettings,
) -> None:
    assert reaped(leave_early(silent_server, KeyboardInterrupt()))


def test_the_process_that_loads_the_topology_for_a_plan_imports_neither_asyncio_nor_nats() -> None:
    # The child reads; the parent's critical path (load, diff, render) needs no event loop.
    code = (
        "import sys\n"
        "import jelmore_infra.cli.main, jelmore_infra.cli.plan_cmd\n"
        "import jelmore_infra.live.ahead, jelmore_infra.workflow, jelmore_infra.planfile\n"
        "import jelmore_infra.topology.load, jelmore_infra.diff, jelmore_infra.render.human\n"
        "print(sorted(m for m in ('asyncio', 'nats') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_a_server_error_of_the_child_reaches_the_parent_with_the_same_message() -> None:
    # JetStreamAPIError cannot be rebuilt from its pickle; the CLI prints any JelmoreError as
    # "Error: <message>", so the parent gets a JelmoreError with the same message.
    refused = JetStreamAPIError("$JS.API.STREAM.LIST", 503, 10039, "jetstream not enabled")
    sent = pickle.loads(pickle.dumps(_portable(refused)))
    assert isinstance(sent, JelmoreError)
    assert str(sent) == str(refused)
    failed = pickle.loads(pickle.dumps(_portable(ConnectionFailed("cannot connect"))))
    assert type(failed) is ConnectionFailed
    assert str(failed) == "cannot connect"


def test_the_live_state_the_child_sends_arrives_equal_in_every_field() -> None:
    # The child pickles the model's dataclasses as constructor calls (faster to unpickle).
    config = {"name": "ORDERS", "subjects": ["orders.>"], "metadata": {"k": "v"}}
    sent = LiveState(
        server=ServerIdentity("n1", "ID", "2.12.5", 1, cluster="c", account="A", url="nats://h"),
        streams={"ORDERS": LiveStream("ORDERS", config, {"messages": 3, "created": "2025"})},
        consumers={
            ("ORDERS", "w"): LiveConsumer("ORDERS", "w", {"durable_name": "w"}, {"num_pending": 1})
        },
        unavailable={"stream.GONE": "offline: no quorum"},
        events={"order.placed": LiveEvent("order.placed", {"subject": "orders.placed"}, 2, 5)},
    )
    answer = pickle.loads(_dumps((True, sent)))
    assert answer == (True, sent)
    received = answer[1]
    assert type(received.streams["ORDERS"]) is LiveStream
