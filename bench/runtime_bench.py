"""Runtime benchmarks: the jelmore_infra.runtime shim against raw nats-py.

Usage: ``runtime_bench.py NATS_URL FIGURE REPS`` with FIGURE one of ``publish``, ``pipeline``,
``consume``, ``latency``, ``validate-publish``, ``validate-consume``. The server must hold the
repository's topology/ (applied by bench/run.py with `jelmore-infra apply`). After one warm-up
of each side the reps run interleaved (ours, raw, ours, raw, …); the script prints one JSON
object ``{"ours": [...], "base": [...], "unit": ..., "detail": {...}}`` (rates in events/s,
latency p99 in ms) or ``{"error": "..."}``.

Both sides build the same envelope per event (event_type, session_id, timestamp with
milliseconds, message_id, retry_count, payload of about 1 KB) and send the same headers
(``Nats-Msg-Id``, ``Event-Type``, ``Session-Id``). Throughput figures run in this process; the
latency figure consumes here and publishes from a second process (``publish-ours`` /
``publish-raw``), as a real publisher and worker would.

The two ``validate-*`` figures run the shim on both sides: with payload validation against the
event catalogue's schema (the shim as it is) and without it (the catalogue's validation replaced
by a no-op for that side's runs), so their ratio is what validation costs.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import nats

STREAM = "JELMORE"
GROUP = "session_handlers"
EVENT_TYPE = "session.output"
SUBJECT = "jelmore.session.output"
PAD = "x" * 860  # envelope ≈ 1.1 KB with the other fields

PUBLISH_N = 2_000
PIPELINE_N = 20_000
PIPELINE_WINDOW = 256
CONSUME_N = 10_000
LATENCY_RATE = 1_000
LATENCY_SECONDS = 3.0


def payload(n: int) -> dict[str, Any]:
    return {"n": n, "text": PAD, "sent_ns": time.perf_counter_ns()}


def raw_envelope(n: int, session: str) -> tuple[bytes, dict[str, str]]:
    """The raw side's envelope: what a hand-written nats-py publisher would build."""
    now = datetime.now(UTC)
    mid = uuid.uuid4().hex
    body = {
        "event_type": EVENT_TYPE,
        "session_id": session,
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "message_id": mid,
        "retry_count": 0,
        "payload": payload(n),
    }
    data = json.dumps(body, separators=(",", ":")).encode()
    return data, {"Nats-Msg-Id": mid, "Event-Type": EVENT_TYPE, "Session-Id": session}


class Ours:
    """The shim's entry points, imported lazily so a missing piece is reported, not crashed."""

    def __init__(self, url: str) -> None:
        from jelmore_infra import runtime as default

        default.configure(url=url)
        self.bus = default.default_runtime().bus
        try:
            from jelmore_infra import runtime as rt

            self.publish_event = rt.publish_event
            self.subscribe_to_events = rt.subscribe_to_events
            self.publisher_cls = rt.Publisher
        except (ImportError, AttributeError):
            from jelmore_infra.runtime.publish import Publisher, publish_event
            from jelmore_infra.runtime.subscribe import subscribe_to_events

            self.publish_event = publish_event
            self.subscribe_to_events = subscribe_to_events
            self.publisher_cls = Publisher


# -- publish one at a time --------------------------------------------------------------------


async def ours_publish(ours: Ours, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        ok = await ours.publish_event(EVENT_TYPE, "bench-session", payload(i))
        if not ok:
            raise RuntimeError("publish_event returned False")
    return n / (time.perf_counter() - start)


async def raw_publish(js: Any, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        data, headers = raw_envelope(i, "bench-session")
        await js.publish(SUBJECT, data, headers=headers)
    return n / (time.perf_counter() - start)


# -- pipelined publishing ---------------------------------------------------------------------


async def ours_pipeline(ours: Ours, n: int) -> float:
    start = time.perf_counter()
    pub = ours.publisher_cls(window=PIPELINE_WINDOW, keep_results=False)
    async with pub:
        for i in range(n):
            await pub.publish(EVENT_TYPE, "bench-session", payload(i))
    if pub.ok != n:
        raise RuntimeError(f"Publisher stored {pub.ok} of {n} events ({pub.failed} failed)")
    return n / (time.perf_counter() - start)


async def raw_pipeline(nc: Any, n: int) -> float:
    js = nc.jetstream(publish_async_max_pending=PIPELINE_WINDOW)
    start = time.perf_counter()
    futures = []
    for i in range(n):
        data, headers = raw_envelope(i, "bench-session")
        futures.append(await js.publish_async(SUBJECT, data, headers=headers))
    acks = await asyncio.wait_for(asyncio.gather(*futures), 60)
    if len(acks) != n:
        raise RuntimeError("raw pipeline lost acks")
    return n / (time.perf_counter() - start)


# -- one consumer-group worker ----------------------------------------------------------------


async def purge(nc: Any) -> None:
    """Empty the stream so the group starts each rep with no backlog (purging moves the
    consumers' floors past the removed messages)."""
    msg = await nc.request(f"$JS.API.STREAM.PURGE.{STREAM}", b"", timeout=10)
    if b'"error"' in msg.data:
        raise RuntimeError(f"purge failed: {msg.data!r}")


async def prefill(nc: Any, n: int) -> None:
    await purge(nc)
    js = nc.jetstream(publish_async_max_pending=1000)
    futures = []
    for i in range(n):
        data, headers = raw_envelope(i, "bench-consume")
        futures.append(await js.publish_async(SUBJECT, data, headers=headers))
    await asyncio.wait_for(asyncio.gather(*futures), 60)


async def ours_consume(ours: Ours, nc: Any, n: int) -> float:
    await prefill(nc, n)
    done = asyncio.Event()
    count = 0

    async def handler(event: dict[str, Any], msg: Any) -> None:
        nonlocal count
        count += 1
        if count >= n:
            done.set()

    start = time.perf_counter()
    sub = await ours.subscribe_to_events(None, handler, consumer_group=GROUP)
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - start
    await sub.stop()
    return n / elapsed


async def raw_consume(nc: Any, n: int) -> float:
    await prefill(nc, n)
    js = nc.jetstream()
    start = time.perf_counter()
    sub = await js.pull_subscribe_bind(GROUP, STREAM)
    count = 0
    while count < n:
        try:
            msgs = await sub.fetch(100, timeout=1)
        except nats.errors.TimeoutError:
            continue
        for msg in msgs:
            json.loads(msg.data)
            _ = msg.metadata
            await msg.ack()
            count += 1
    elapsed = time.perf_counter() - start
    await sub.unsubscribe()
    return n / elapsed


# -- end-to-end latency at a paced rate --------------------------------------------------------
#
# The publisher is a separate process (``runtime_bench.py URL publish-ours|publish-raw``) pacing
# LATENCY_RATE events/s; it stamps ``sent_ns`` (wall clock, shared by both processes) into the
# payload and the consumer here computes arrival - sent_ns per event.


async def paced(rate: int, seconds: float, send: Callable[[int], Awaitable[None]]) -> int:
    total = int(rate * seconds)
    start = time.perf_counter()
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(i)
    return total


def p99_ms(samples_ns: list[int]) -> float:
    ordered = sorted(samples_ns)
    rank = max(0, min(len(ordered) - 1, round(0.99 * (len(ordered) - 1))))
    return ordered[rank] / 1e6


def stamped(n: int) -> dict[str, Any]:
    return {"n": n, "text": PAD, "sent_ns": time.time_ns()}


async def publisher_process(url: str, side: str) -> None:
    """The paced publisher of the latency figure (run as its own process)."""
    if side == "ours":
        ours = Ours(url)
        await ours.bus.connect()

        async def send(i: int) -> None:
            if not await ours.publish_event(EVENT_TYPE, "bench-latency", stamped(i)):
                raise RuntimeError("publish_event returned False")

        await paced(LATENCY_RATE, LATENCY_SECONDS, send)
        await ours.bus.close()
        return
    nc = await nats.connect(url, max_reconnect_attempts=0)
    js = nc.jetstream()

    async def raw_send(i: int) -> None:
        data, headers = raw_envelope(i, "bench-latency")
        body = json.loads(data)
        body["payload"] = stamped(i)
        await js.publish(SUBJECT, json.dumps(body).encode(), headers=headers)

    await paced(LATENCY_RATE, LATENCY_SECONDS, raw_send)
    await nc.close()


async def run_publisher(url: str, side: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, __file__, url, f"publish-{side}", "0", stdout=asyncio.subprocess.DEVNULL
    )


def summary(samples: list[int], total: int) -> tuple[float, dict[str, Any]]:
    if len(samples) < total:
        raise RuntimeError(f"received {len(samples)} of {total} events")
    return p99_ms(samples), {"p50_ms": sorted(samples)[len(samples) // 2] / 1e6}


async def ours_latency(ours: Ours, nc: Any) -> tuple[float, dict[str, Any]]:
    await purge(nc)
    samples: list[int] = []
    total = int(LATENCY_RATE * LATENCY_SECONDS)
    done = asyncio.Event()

    async def handler(event: dict[str, Any], msg: Any) -> None:
        samples.append(time.time_ns() - int(event["payload"]["sent_ns"]))
        if len(samples) >= total:
            done.set()

    sub = await ours.subscribe_to_events(None, handler, consumer_group=GROUP)
    proc = await run_publisher(nc.connected_url.geturl(), "ours")
    try:
        await asyncio.wait_for(done.wait(), LATENCY_SECONDS + 30)
    finally:
        await proc.wait()
        await sub.stop()
    return summary(samples, total)


async def raw_latency(nc: Any) -> tuple[float, dict[str, Any]]:
    await purge(nc)
    js = nc.jetstream()
    sub = await js.pull_subscribe_bind(GROUP, STREAM)
    samples: list[int] = []
    total = int(LATENCY_RATE * LATENCY_SECONDS)
    proc = await run_publisher(nc.connected_url.geturl(), "raw")
    deadline = time.monotonic() + LATENCY_SECONDS + 30
    try:
        while len(samples) < total and time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(100, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for msg in msgs:
                event = json.loads(msg.data)
                samples.append(time.time_ns() - int(event["payload"]["sent_ns"]))
                await msg.ack()
    finally:
        await proc.wait()
        await sub.unsubscribe()
    return summary(samples, total)


# -- validation on vs off ---------------------------------------------------------------------


class validation_off:
    """The catalogue's payload check as a no-op while the block runs (the baseline side)."""

    def __enter__(self) -> None:
        from jelmore_infra.runtime.catalogue import Catalogue

        self.saved = Catalogue.violation_of
        Catalogue.violation_of = lambda *args, **kwargs: None  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        from jelmore_infra.runtime.catalogue import Catalogue

        Catalogue.violation_of = self.saved  # type: ignore[method-assign]


# -- driver -----------------------------------------------------------------------------------


async def run(url: str, figure: str, reps: int) -> dict[str, Any]:
    nc = await nats.connect(url, max_reconnect_attempts=0)
    js = nc.jetstream()
    try:
        ours = Ours(url)
    except ImportError as exc:
        await nc.close()
        return {"error": f"runtime shim not importable: {exc}"}
    await ours.bus.connect()
    ours_values: list[float] = []
    base_values: list[float] = []
    detail: dict[str, list[Any]] = {"ours": [], "base": []}

    async def one(side: str, warm: bool) -> None:
        if figure == "publish":
            n = 200 if warm else PUBLISH_N
            value = await (ours_publish(ours, n) if side == "ours" else raw_publish(js, n))
            extra: dict[str, Any] = {}
        elif figure == "pipeline":
            n = 2_000 if warm else PIPELINE_N
            value = await (ours_pipeline(ours, n) if side == "ours" else raw_pipeline(nc, n))
            extra = {}
        elif figure == "consume":
            n = 1_000 if warm else CONSUME_N
            value = await (ours_consume(ours, nc, n) if side == "ours" else raw_consume(nc, n))
            extra = {}
        elif figure == "latency":
            value, extra = await (ours_latency(ours, nc) if side == "ours" else raw_latency(nc))
        elif figure in ("validate-publish", "validate-consume"):
            extra = {}
            n = (
                (200 if warm else PUBLISH_N)
                if figure == "validate-publish"
                else (1_000 if warm else CONSUME_N)
            )

            async def measure() -> float:
                if figure == "validate-publish":
                    return await ours_publish(ours, n)
                return await ours_consume(ours, nc, n)

            if side == "ours":
                value = await measure()
            else:
                with validation_off():
                    value = await measure()
        else:
            raise ValueError(f"unknown figure {figure}")
        if not warm:
            (ours_values if side == "ours" else base_values).append(value)
            detail[side].append(extra)

    try:
        await one("ours", True)
        await one("base", True)
        for _ in range(reps):
            await one("ours", False)
            await one("base", False)
    finally:
        await ours.bus.close()
        await nc.close()
    unit = "ms" if figure == "latency" else "ev/s"
    return {"ours": ours_values, "base": base_values, "unit": unit, "detail": detail}


def main() -> None:
    url, figure, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if figure.startswith("publish-"):
        asyncio.run(publisher_process(url, figure.removeprefix("publish-")))
        return
    try:
        result = asyncio.run(run(url, figure, reps))
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
