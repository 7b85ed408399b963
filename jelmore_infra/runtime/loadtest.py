"""The paced load generator behind ``jelmore-infra events load``.

Every 10 ms tick it queues the events due by then (``rate × elapsed``) into a ``Publisher`` (at
most ``window`` publishes in flight, each with its own timeout), then waits for the last acks.
It reports what was achieved: events acknowledged per second (until the last ack), ack latency
percentiles and errors. Publishes fall behind, rather than pile up, when the server cannot keep up.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from jelmore_infra.runtime.bus import Bus
from jelmore_infra.runtime.envelope import EventError, build_event
from jelmore_infra.runtime.metrics import summarise
from jelmore_infra.runtime.publish import Publisher

TICK = 0.01


async def run_load(
    bus: Bus,
    *,
    rate: int,
    duration: float,
    event_type: str = "session.output",
    size: int = 256,
    window: int = 512,
    console: Any = None,
    timeout: float = 5.0,  # noqa: ASYNC109
) -> dict[str, Any]:
    """Publish ``rate`` events/s for ``duration`` s through ``bus``; returns the measured
    result."""
    from datetime import UTC, datetime

    await bus.connect()
    kind = await bus.catalogue.kind(event_type)
    session = f"load-{uuid.uuid4().hex[:8]}"
    padding = "x" * size
    total = max(1, int(rate * duration))
    pub = Publisher(window=window, timeout=timeout, attempts=1, bus=bus, keep_results=False)
    progress: Any = None
    task_id: Any = None
    if console is not None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(
            TextColumn("load"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} sent"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        progress.start()
        task_id = progress.add_task("load", total=total)
    sent = 0
    started = time.monotonic()
    try:
        while sent < total:
            elapsed = time.monotonic() - started
            due = min(total, int(rate * elapsed) + 1)
            now = datetime.now(UTC)
            while sent < due:
                payload = {"n": sent, "sent_ns": time.time_ns(), "padding": padding}
                problem = bus.catalogue.violation_of(event_type, kind.version, payload)
                if problem is not None:
                    raise EventError(f"{event_type} load payload violates its schema: {problem}")
                event = build_event(
                    kind.subject,
                    event_type,
                    session,
                    payload,
                    now=now,
                    schema_version=kind.version,
                )
                await pub.send(event)
                sent += 1
            if progress is not None:
                progress.update(task_id, completed=sent)
            next_tick = started + (int(elapsed / TICK) + 1) * TICK
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        await pub.wait()
    finally:
        if progress is not None:
            progress.stop()
    finished = time.monotonic() - started
    return {
        "target_rate": rate,
        "duration": duration,
        "subject": kind.subject,
        "sent": sent,
        "acknowledged": pub.ok,
        "errors": pub.failed,
        "not_confirmed": pub.not_confirmed,
        "not_acknowledged": sent - pub.ok,
        "duplicates": pub.duplicates,
        "elapsed_seconds": round(finished, 3),
        "achieved_rate": round(pub.ok / finished, 1) if finished > 0 else 0.0,
        "ack_latency": summarise(pub.latencies),
    }
