"""A short end-to-end demonstration of the runtime, for ``make demo``::

    python -m jelmore_infra.runtime.demo [NATS_URL]

Needs a server with the Jelmore topology provisioned (``jelmore-infra apply``). It publishes the
events of two sample sessions, runs the four consumer groups on them (one worker each, in this
process), lets ``git_monitors`` fail one deliberately broken event until it lands in the
dead-letter queue (after the group's retry delays, 2 s and 4 s with the default topology), then
prints the health status and the performance metrics. Exit code 1 when something is missing.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

from jelmore_infra import runtime
from jelmore_infra.errors import JelmoreError
from jelmore_infra.runtime.metrics import METRICS

GROUPS = ("session_handlers", "file_watchers", "git_monitors", "system_monitors")


def _line(text: str) -> None:
    print(text, flush=True)


async def demo(url: str | None) -> int:
    runtime.configure(url=url, client_id="jelmore-demo")
    settings = runtime.current_settings()
    _line(f"== jelmore runtime demo on {settings.safe_url()}")
    run = uuid.uuid4().hex[:8]
    good, bad = f"demo-{run}-a", f"demo-{run}-b"
    handled: dict[str, list[str]] = {g: [] for g in GROUPS}
    broken_id = f"demo-{run}-broken"

    def make(group: str) -> Any:
        async def handler(event: dict[str, Any], msg: Any) -> None:
            if not str(event.get("session_id", "")).startswith(f"demo-{run}"):
                return  # older events still waiting for this group: acknowledged quietly
            if group == "git_monitors" and event.get("message_id") == broken_id:
                attempt = msg.metadata.num_delivered
                _line(f"   [{group}] {event['event_type']} {broken_id}: attempt {attempt} fails")
                raise RuntimeError("simulated failure: repository not reachable")
            handled[group].append(event["event_type"])
            _line(f"   [{group}] {event['event_type']} session={event['session_id']}")

        return handler

    subs = []
    try:
        for group in GROUPS:
            subs.append(await runtime.subscribe_to_events(None, make(group), consumer_group=group))
        _line(f"-- consumer groups running: {', '.join(GROUPS)}")
        samples: list[tuple[str, str, dict[str, Any], str | None]] = [
            ("session.created", good, {"provider": "claude", "timeout": 7200}, None),
            ("session.status", good, {"status": "running"}, None),
            ("session.output", good, {"content": "Hello world", "tokens": 2}, None),
            ("session.directory_changed", good, {"path": "/srv/jelmore/src"}, None),
            ("session.file_modified", good, {"path": "/srv/jelmore/src/app.py"}, None),
            ("session.git_activity", good, {"action": "commit", "sha": "abc123"}, None),
            ("session.completed", good, {"exit_code": 0}, None),
            ("session.created", bad, {"provider": "claude"}, None),
            ("session.failed", bad, {"error": "timeout"}, None),
            ("session.git_activity", bad, {"action": "push", "broken": True}, broken_id),
        ]
        _line(f"-- publishing {len(samples)} events (one of them breaks git_monitors)")
        for event_type, session, payload, mid in samples:
            ok = await runtime.publish_event(event_type, session, payload, message_id=mid)
            _line(f"   published {event_type} session={session} acked={ok}")
        _line("-- waiting for the broken event to reach the dead-letter queue …")
        for _ in range(300):  # at most 60 s
            if METRICS.dead_lettered >= 1:
                break
            await asyncio.sleep(0.2)
        if METRICS.dead_lettered < 1:
            _line("!! the broken event did not reach the dead-letter queue within 60 s")
            return 1
        await asyncio.sleep(0.5)
    finally:
        for sub in subs:
            await sub.stop()
    _line("-- handled per group: " + ", ".join(f"{g} {len(handled[g])}" for g in GROUPS))
    dlq = [
        e
        for e in await runtime.replay_events(
            [f"{settings.prefix}.dlq.git_monitors.>"], start_time=_minutes_ago(10)
        )
        if e.get("message_id") == broken_id
    ]
    if dlq:
        record = dlq[-1]
        _line(
            f"-- dead-lettered: {record['event_type']} session={record['session_id']} "
            f"attempts={record['retry_count']} reason={record['failure_reason']!r}"
        )
    health = await runtime.get_health_status()
    _line(f"-- health: {health['stream_health']}  dlq_size={health['dlq_size']}")
    for reason in health["reasons"]:
        _line(f"   - {reason}")
    for group, lag in health["consumer_lag"].items():
        _line(f"   {group}: pending {lag['pending']}, unacknowledged {lag['ack_pending']}")
    metrics = await runtime.get_performance_metrics()
    _line("-- performance metrics (this process):")
    _line(json.dumps(metrics["process"], indent=2))
    return 0


def _minutes_ago(minutes: int) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(minutes=minutes)


async def _main(url: str | None) -> int:
    try:
        return await demo(url)
    finally:
        await runtime.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else None
    try:
        return asyncio.run(_main(url))
    except JelmoreError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
