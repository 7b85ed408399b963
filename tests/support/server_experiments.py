"""One-off server experiments behind docs/buckets.md and docs/migration-facts.md.

These facts are measurements or take too long (or too much data) for the test suite, so they are
kept as a runnable script instead of tests. Each experiment starts its own throw-away server with
the test harness and prints what it saw. Run from the repository root::

    JELMORE_SERVER_CACHE=.cache/nats-server python tests/support/server_experiments.py copy-time
    ... server_experiments.py compression   # what an in-place compression change does to blocks
    ... server_experiments.py ttl-restart   # a per-message TTL restarts when a source copies it
    ... server_experiments.py limits        # smaller facts of docs/buckets.md
    ... server_experiments.py stale-source  # a copy still sourcing a re-created name
    ... server_experiments.py cluster-reuse # delete and re-create a name in a cluster

``--versions 2.10.26,2.15.1`` picks the servers (default: the oldest and the newest supported).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
import nats.js.errors  # noqa: E402

from tests.support.natsserver import NatsServer, binary_for  # noqa: E402

S = 1_000_000_000


async def _api(nc: Any, subject: str, body: Any = None) -> dict[str, Any]:
    payload = b"" if body is None else json.dumps(body).encode()
    return dict(json.loads((await nc.request(f"$JS.API.{subject}", payload, timeout=10)).data))


async def _count(nc: Any, stream: str) -> int:
    return int((await _api(nc, f"STREAM.INFO.{stream}"))["state"]["messages"])


async def copy_time(version: str, count: int = 10_000, size: int = 200, rounds: int = 3) -> None:
    """Seconds for a new stream with ``sources: [{name: A}]`` to hold all of A's messages."""
    for storage in ("file", "memory"):
        times = []
        for _ in range(rounds):
            with NatsServer(binary=binary_for(version)) as server:
                nc = await nats.connect(server.url)
                js = nc.jetstream()
                await _api(
                    nc, "STREAM.CREATE.A", {"name": "A", "subjects": ["a.>"], "storage": storage}
                )
                payload = b"x" * size
                pending = []
                for i in range(count):
                    headers = {"Nats-Msg-Id": f"m{i}"}
                    pending.append(js.publish(f"a.{i % 100}", payload, headers=headers))
                    if len(pending) == 500:
                        await asyncio.gather(*pending)
                        pending = []
                await asyncio.gather(*pending)
                started = time.monotonic()
                await _api(
                    nc,
                    "STREAM.CREATE.B",
                    {"name": "B", "sources": [{"name": "A"}], "storage": storage},
                )
                while await _count(nc, "B") < count:  # noqa: ASYNC110 - polls the server
                    await asyncio.sleep(0.005)
                times.append(time.monotonic() - started)
                await nc.close()
        print(
            f"{version} {storage}: {count} messages of {size} B copied in "
            f"{statistics.median(times):.2f} s (median of {rounds}: "
            + ", ".join(f"{t:.2f}" for t in times)
            + ")"
        )


def _blocks(server: NatsServer, stream: str) -> list[int]:
    assert server.store_dir is not None
    folder = next(Path(server.store_dir).rglob(stream)) / "msgs"
    return [p.stat().st_size for p in sorted(folder.glob("*.blk"), key=lambda p: int(p.stem))]


async def _fill(url: str, bucket: str, prefix: str, count: int) -> None:
    """``count`` acknowledged puts of 5,000 compressible bytes over 50 keys."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    for start in range(0, count, 200):
        batch = range(start, min(start + 200, count))
        await asyncio.gather(
            *(js.publish(f"$KV.{bucket}.{prefix}{i % 50}", b"a" * 5000) for i in batch)
        )
    await nc.close()


async def compression(version: str) -> None:
    """Turn s2 on for a file KV bucket holding ~5 MB; write 10 MB more; restart; write 10 MB more.

    Sizes are those of the ``.blk`` files: about 4 MiB each uncompressed, a few KiB compressed.
    """
    with NatsServer(binary=binary_for(version)) as server:
        nc = await nats.connect(server.url)
        await nc.jetstream().create_key_value(bucket="c", history=64)
        await nc.close()
        await _fill(server.url, "c", "k", 1000)
        print(f"{version} before the update, block sizes: {_blocks(server, 'KV_c')}")
        nc = await nats.connect(server.url)
        config = (await _api(nc, "STREAM.INFO.KV_c"))["config"]
        reply = await _api(nc, "STREAM.UPDATE.KV_c", {**config, "compression": "s2"})
        print(f"{version} update to s2: {reply.get('error') or 'accepted'}")
        await nc.close()
        await _fill(server.url, "c", "n", 2000)
        print(f"{version} after more writes: {_blocks(server, 'KV_c')}")
        server.restart()
        await _fill(server.url, "c", "m", 2000)
        print(f"{version} after a restart and more writes: {_blocks(server, 'KV_c')}")


async def ttl_restart(version: str) -> None:
    """Publish with ``Nats-TTL: 3s``; copy it 2 s later into a TTL-enabled stream; watch both."""
    with NatsServer(binary=binary_for(version)) as server:
        nc = await nats.connect(server.url)
        await _api(nc, "STREAM.CREATE.A", {"name": "A", "subjects": ["a.>"], "allow_msg_ttl": True})
        await nc.jetstream().publish("a.1", b"x", headers={"Nats-TTL": "3s"})
        start = time.monotonic()
        await asyncio.sleep(2)
        body = {"name": "B", "sources": [{"name": "A"}], "allow_msg_ttl": True}
        await _api(nc, "STREAM.CREATE.B", body)
        while time.monotonic() - start < 6:
            await asyncio.sleep(0.5)
            print(
                f"{version} t={time.monotonic() - start:.1f}s origin={await _count(nc, 'A')} "
                f"copy={await _count(nc, 'B')}"
            )
        await nc.close()


async def limits(version: str) -> None:
    """Smaller facts: discard old under a lower max_bytes, a lower ttl, cross-client creates,
    limit markers on a mirror."""
    from tests.support import bucket_configs as bc

    with NatsServer(binary=binary_for(version)) as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        kv = await js.create_key_value(bucket="old", history=10)
        for i in range(10):
            await kv.put(f"k{i}", b"x" * 1000)
        config = (await _api(nc, "STREAM.INFO.KV_old"))["config"]
        await _api(nc, "STREAM.UPDATE.KV_old", {**config, "discard": "old", "max_bytes": 3000})
        print(
            f"{version} discard old, max_bytes 10 KB -> 3000: {await _count(nc, 'KV_old')} of 10 left"
        )

        kv = await js.create_key_value(bucket="ttl")
        await kv.put("k", b"v")
        await asyncio.sleep(1.2)
        config = (await _api(nc, "STREAM.INFO.KV_ttl"))["config"]
        await _api(nc, "STREAM.UPDATE.KV_ttl", {**config, "max_age": S, "duplicate_window": S})
        started = time.monotonic()
        while await _count(nc, "KV_ttl") and time.monotonic() - started < 10:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        print(
            f"{version} ttl lowered to 1 s: a 1.2 s old value gone after {time.monotonic() - started:.1f} s"
        )

        go_body = bc.nats_go_request("kv_min", version)
        go_body.update(name="KV_gob", subjects=["$KV.gob.>"])
        await _api(nc, "STREAM.CREATE.KV_gob", go_body)
        try:
            await js.create_key_value(bucket="gob")
            print(f"{version} nats-py create on a nats.go bucket: accepted")
        except nats.js.errors.APIError as exc:
            print(f"{version} nats-py create on a nats.go bucket: {exc.err_code} {exc.description}")
        await js.create_key_value(bucket="pyb")
        go_body.update(name="KV_pyb", subjects=["$KV.pyb.>"])
        reply = await _api(nc, "STREAM.CREATE.KV_pyb", go_body)
        print(f"{version} nats.go create on a nats-py bucket: {reply.get('error') or 'accepted'}")

        if version >= "2.11":
            mirror = bc.nats_go_request("kv_mirror", version)
            mirror.update(mirror={"name": "KV_gob"}, allow_msg_ttl=True)
            mirror["subject_delete_marker_ttl"] = 5 * S
            reply = await _api(nc, f"STREAM.CREATE.{mirror['name']}", mirror)
            print(f"{version} limit markers on a mirror: {reply.get('error') or 'accepted'}")
        await nc.close()


async def stale_source(version: str) -> None:
    """A copy T still sourcing "A" after A was deleted and re-created: does T copy the new A?"""
    with NatsServer(binary=binary_for(version)) as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await _api(nc, "STREAM.CREATE.A", {"name": "A", "subjects": ["a.>"]})
        for i in range(3):
            await js.publish(f"a.{i}", b"old")
        await _api(nc, "STREAM.CREATE.T", {"name": "T", "sources": [{"name": "A"}]})
        while await _count(nc, "T") < 3:  # noqa: ASYNC110 - polls the server
            await asyncio.sleep(0.01)
        await _api(nc, "STREAM.DELETE.A")
        await _api(nc, "STREAM.CREATE.A", {"name": "A", "subjects": ["a.>"]})
        for i in range(5):
            await js.publish(f"a.n{i}", b"new")
        started = time.monotonic()
        while await _count(nc, "T") == 3 and time.monotonic() - started < 120:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        await asyncio.sleep(1)
        print(
            f"{version} T held 3, then {await _count(nc, 'T')} after "
            f"{time.monotonic() - started:.0f} s (the new A holds 5)"
        )
        await nc.close()


async def cluster_reuse(version: str) -> None:
    """Delete a stream and create it again at once in a 3-node cluster, R1 and R3."""
    from tests.support.natsserver import NatsCluster

    with NatsCluster(binary=binary_for(version)) as cluster:
        nc = await nats.connect(servers=cluster.urls)
        js = nc.jetstream()
        for replicas in (1, 3):
            body = {"name": "A", "subjects": ["a.>"], "num_replicas": replicas}
            await _api(nc, "STREAM.CREATE.A", body)
            await js.publish("a.1", b"x")
            started = time.monotonic()
            deleted = await _api(nc, "STREAM.DELETE.A")
            created = await _api(nc, "STREAM.CREATE.A", body)
            took = time.monotonic() - started
            ack = await js.publish("a.1", b"y", timeout=5)
            print(
                f"{version} R{replicas}: delete {deleted.get('success')}, create again "
                f"{created.get('error') or 'accepted'} in {took:.3f} s; next publish seq {ack.seq}"
            )
            await _api(nc, "STREAM.DELETE.A")
        await nc.close()


EXPERIMENTS = {
    "copy-time": copy_time,
    "compression": compression,
    "ttl-restart": ttl_restart,
    "limits": limits,
    "stale-source": stale_source,
    "cluster-reuse": cluster_reuse,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--versions", default="2.10.26,2.15.1")
    parser.add_argument("--count", type=int, default=10_000, help="messages for copy-time")
    args = parser.parse_args(argv)
    for version in args.versions.split(","):
        if args.experiment == "ttl-restart" and version.startswith("2.10."):
            print(f"{version}: no per-message TTLs before 2.11")
            continue
        if args.experiment == "copy-time":
            asyncio.run(copy_time(version, count=args.count))
        else:
            asyncio.run(EXPERIMENTS[args.experiment](version))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
