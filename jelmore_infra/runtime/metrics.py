"""Counters and latency percentiles of one runtime (what ``get_performance_metrics`` reports about
this process's use of it). Each ``Runtime`` has its own ``Metrics``; the default runtime behind
``jelmore_infra.runtime``'s functions counts into ``METRICS``.

Latencies are kept in bounded windows (the most recent ``WINDOW`` samples), so a long-running
worker uses constant memory. ``percentile`` uses the nearest-rank method.

No I/O; the clock is ``time.monotonic`` only for rates, passed in where it matters for tests.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

WINDOW = 10_000


def percentile(samples: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (``pct`` in 0..100) of ``samples``; ``None`` when empty."""
    if not samples:
        return None
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within 0..100, got {pct}")
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summarise(samples: Sequence[float]) -> dict[str, float | int | None]:
    """Count and p50/p90/p99/max of latencies given in seconds, reported in milliseconds."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    return {
        "count": len(samples),
        "p50_ms": ms(percentile(samples, 50)),
        "p90_ms": ms(percentile(samples, 90)),
        "p99_ms": ms(percentile(samples, 99)),
        "max_ms": ms(max(samples) if samples else None),
    }


@dataclass
class Metrics:
    """Counters of one runtime (shared by every publisher and subscription of it)."""

    started: float = field(default_factory=time.monotonic)
    published: int = 0
    publish_duplicates: int = 0
    publish_errors: int = 0  # refused: certainly not stored
    publish_not_confirmed: int = 0  # no acknowledgement: may or may not be stored
    publish_retries: int = 0
    consumed: int = 0
    handled: int = 0
    handler_errors: int = 0
    retries_scheduled: int = 0
    redeliveries: int = 0
    dead_lettered: int = 0
    dead_letter_errors: int = 0
    routed_from_advisories: int = 0
    nacked_on_stop: int = 0
    reconnects: int = 0
    disconnects: int = 0
    publish_latency: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    handler_latency: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    delivery_delay: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    by_event_type: dict[str, int] = field(default_factory=dict)

    def record_publish(self, seconds: float, *, duplicate: bool = False) -> None:
        self.published += 1
        if duplicate:
            self.publish_duplicates += 1
        self.publish_latency.append(seconds)

    def record_consumed(self, event_type: str, num_delivered: int) -> None:
        self.consumed += 1
        if num_delivered > 1:
            self.redeliveries += 1
        self.by_event_type[event_type] = self.by_event_type.get(event_type, 0) + 1

    def record_delivery_delay(self, seconds: float) -> None:
        """Time from the event being stored to its handler starting (end-to-end latency)."""
        self.delivery_delay.append(max(0.0, seconds))

    def record_handled(self, seconds: float, *, ok: bool) -> None:
        if ok:
            self.handled += 1
        else:
            self.handler_errors += 1
        self.handler_latency.append(seconds)

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """Plain data: counts, rates per second since start, latency summaries."""
        elapsed = max((now if now is not None else time.monotonic()) - self.started, 1e-9)
        return {
            "uptime_seconds": round(elapsed, 3),
            "publish": {
                "count": self.published,
                "duplicates": self.publish_duplicates,
                "errors": self.publish_errors,
                "not_confirmed": self.publish_not_confirmed,
                "retries": self.publish_retries,
                "rate_per_second": round(self.published / elapsed, 3),
                "ack_latency": summarise(list(self.publish_latency)),
            },
            "consume": {
                "count": self.consumed,
                "handled": self.handled,
                "handler_errors": self.handler_errors,
                "retries_scheduled": self.retries_scheduled,
                "redeliveries": self.redeliveries,
                "dead_lettered": self.dead_lettered,
                "dead_letter_errors": self.dead_letter_errors,
                "routed_from_advisories": self.routed_from_advisories,
                "returned_on_stop": self.nacked_on_stop,
                "rate_per_second": round(self.consumed / elapsed, 3),
                "handler_latency": summarise(list(self.handler_latency)),
                "delivery_latency": summarise(list(self.delivery_delay)),
                "by_event_type": dict(sorted(self.by_event_type.items())),
            },
            "connection": {"disconnects": self.disconnects, "reconnects": self.reconnects},
        }


#: The default runtime's metrics.
METRICS = Metrics()


def reset() -> None:
    """Start the default runtime's counts afresh (tests, or a long-running process that reports
    periods)."""
    fresh = Metrics()
    for name in fresh.__dataclass_fields__:
        setattr(METRICS, name, getattr(fresh, name))
