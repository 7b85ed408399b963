"""The progress lines of `apply`'s steps: one per step event, written together once per turn of
the event loop, and all of them before the result is reported."""

from __future__ import annotations

import asyncio

import pytest

from jelmore_infra.apply import ApplyResult, StepResult
from jelmore_infra.cli.apply_cmd import _StepLines
from jelmore_infra.plan import Action, Kind, ResourceChange


def _change(name: str) -> ResourceChange:
    return ResourceChange(
        address=f"stream.{name}",
        kind=Kind.STREAM,
        stream=name,
        name=name,
        action=Action.CREATE,
        before=None,
        after={"name": name},
    )


class _CountingStream:
    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def _capture(monkeypatch: pytest.MonkeyPatch) -> _CountingStream:
    """Every write to stderr, from here on (pytest sets its own stderr again before each test's
    body runs, so this is called in the body, not in a fixture)."""
    stream = _CountingStream()
    monkeypatch.setattr("sys.stderr", stream)
    return stream


def test_the_lines_of_one_loop_turn_are_written_together(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _capture(monkeypatch)
    lines = _StepLines(quiet=False)

    async def steps() -> list[str]:
        for n in range(3):
            lines.started(_change(f"S{n}"))
        held = list(out.writes)
        await asyncio.sleep(0)  # the loop's next turn
        lines.done(_change("S0"), None)
        await asyncio.sleep(0)
        return held

    held = asyncio.run(steps())
    assert held == []
    assert out.writes == [
        "stream.S0: Creating...\nstream.S1: Creating...\nstream.S2: Creating...\n",
        "stream.S0: Created.\n",
    ]


def test_lines_still_kept_are_written_before_the_result_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = _capture(monkeypatch)
    lines = _StepLines(quiet=False)
    seen: list[list[str]] = []
    report = lines.then(lambda result: seen.append(list(out.writes)))

    async def steps() -> None:
        lines.started(_change("S"))
        lines.done(_change("S"), None)
        report(ApplyResult(steps=[StepResult(_change("S"), "done")]))

    asyncio.run(steps())
    assert seen == [["stream.S: Creating...\nstream.S: Created.\n"]]


def test_without_an_event_loop_a_line_is_written_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _capture(monkeypatch)
    lines = _StepLines(quiet=False)
    lines.progress(_change("S"), "copying 10 messages")
    assert out.writes == ["stream.S: copying 10 messages\n"]


def test_quiet_keeps_only_failures_and_escapes_control_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = _capture(monkeypatch)
    lines = _StepLines(quiet=True)
    lines.started(_change("S"))
    lines.done(_change("S"), None)
    lines.done(_change("T"), "refused\x1b[2J")
    lines.flush()
    assert out.writes == ["stream.T: failed: refused\\x1b[2J\n"]
