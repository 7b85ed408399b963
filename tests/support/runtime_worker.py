"""A consumer-group worker process for the runtime's kill tests.

    python tests/support/runtime_worker.py --url URL --group G --record FILE
        [--fail-rate 0.05] [--seed N] [--fail-below K] [--hang-attempt K] [--concurrency N]
        [--poison-rate 0.005] [--flaky-rate 0.05] [--no-router]

Handles events of group G through ``subscribe_to_events`` (which also runs the dead-letter router)
and appends one line per event to FILE: ``start <message_id> <attempt> <pid>`` when the handler
starts and ``done <message_id> <attempt> <pid>`` when it returns. The handler fails with a random
probability (``--fail-rate``), fails while the attempt is below K (``--fail-below``), or hangs on
attempt K (``--hang-attempt``, to be killed there). ``--poison-rate`` and ``--flaky-rate`` decide
by the message id alone (``fate``, the same in every worker): a poison event fails every attempt,
a flaky one fails its first attempt only. ``--no-router`` leaves the dead-letter router to a
process of its own (as under a ``worker:<group>`` role). Credentials come from the ``NATS_*``
variables the runtime reads. Prints ``ready`` once subscribed; stops gracefully on
SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from jelmore_infra import runtime


def fate(message_id: str) -> float:
    """A number in [0, 1) fixed by the message id: below the poison rate the event is poison,
    below poison plus flaky rates it is flaky."""
    digest = hashlib.sha256(message_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


async def main(args: argparse.Namespace) -> None:
    runtime.configure(url=args.url, client_id=f"worker-{os.getpid()}")
    rng = random.Random(args.seed)
    record = open(args.record, "a", buffering=1, encoding="utf-8")  # noqa: ASYNC230, SIM115
    pid = os.getpid()

    async def handler(event: dict[str, Any], msg: Any) -> None:
        mid = event.get("message_id", "?")
        attempt = msg.metadata.num_delivered
        record.write(f"start {mid} {attempt} {pid}\n")
        if args.hang_attempt and attempt == args.hang_attempt:
            await asyncio.Event().wait()
        if args.fail_below and attempt < args.fail_below:
            raise RuntimeError(f"failing attempt {attempt} on purpose")
        if args.fail_rate and rng.random() < args.fail_rate:
            raise RuntimeError("random failure")
        drawn = fate(mid)
        if drawn < args.poison_rate:
            raise RuntimeError("poison event")
        if attempt == 1 and drawn < args.poison_rate + args.flaky_rate:
            raise RuntimeError("flaky event, first attempt")
        record.write(f"done {mid} {attempt} {pid}\n")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sub = await runtime.subscribe_to_events(
        None,
        handler,
        consumer_group=args.group,
        concurrency=args.concurrency,
        batch=args.batch,
        drain_timeout=2.0,
        route_dead_letters=not args.no_router,
    )
    print("ready", flush=True)
    await stop.wait()
    await sub.stop()
    await runtime.close()
    record.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--fail-below", type=int, default=0)
    parser.add_argument("--hang-attempt", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--poison-rate", type=float, default=0.0)
    parser.add_argument("--flaky-rate", type=float, default=0.0)
    parser.add_argument("--no-router", action="store_true")
    asyncio.run(main(parser.parse_args()))
