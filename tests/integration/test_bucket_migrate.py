"""``replace_strategy: migrate`` for KV buckets and object stores, end to end through the CLI.

A KV bucket with history 5 holding 500 keys with up to five revisions each, deletes and purges
(``KV-Operation`` and ``Nats-Rollup`` headers), and an object store holding multi-chunk objects
(one replaced, one deleted), move from file to memory storage: ``plan`` shows a ``migrate``
without a data-loss warning, ``apply --auto-approve`` (without ``--allow-data-loss``) converges,
the next plan shows no changes, and nats-py's ``js.key_value()`` / ``js.object_store()`` see
exactly what they saw before: every key's whole history in order (value and operation), every
object's bytes and the object list. Apply SIGKILLed while a bucket is migrated converges when run
again, and a bucket written to while it is migrated converges with its last values. On the
oldest and the newest server (one server per version, shared by the module); a bucket with limit
markers (2.11+) keeps its values' `Nats-TTL` headers on 2.15.1.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js.kv import KeyValue

from jelmore_infra.kinds.bucket import stream_from_settings
from jelmore_infra.live.jsapi import JetStreamAPI
from jelmore_infra.migration.steps import Step, temp_name
from jelmore_infra.model import parse_version
from tests.support.cli import apply_until_killed, run_cli
from tests.support.natsserver import NatsServer, binary_for
from tests.support.waiting import kv_key_history as key_history

_names = itertools.count(1)
KEYS = 500
HISTORY = 5


@pytest.fixture(scope="module", params=["2.10.26", "2.15.1"])
def server(request: pytest.FixtureRequest) -> Iterator[NatsServer]:
    with NatsServer(binary=binary_for(request.param)) as srv:
        yield srv


@pytest.fixture
async def bucket(api: JetStreamAPI) -> AsyncIterator[str]:
    """A fresh bucket name; its streams (and any copy) are deleted afterwards."""
    name = f"mig{next(_names)}"
    yield name
    for prefix in ("KV_", "OBJ_"):
        for each in (prefix + name, temp_name(prefix + name)):
            if await api.stream_info(each) is not None:
                await api.delete_stream(each)


def write_topology(directory: Path, kind: str, name: str, *, storage: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    history = f"    history: {HISTORY}\n" if kind == "kv_buckets" else ""
    (directory / "t.yaml").write_text(
        f"{kind}:\n  {name}:\n    description: migrated\n{history}    storage: {storage}\n"
        "    jelmore:\n      replace_strategy: migrate\n",
        encoding="utf-8",
    )
    return directory


def cli(command: str, url: str, topology: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(command, "-s", url, "--topology", str(topology), *extra)


async def fill_kv(kv: KeyValue) -> None:
    """500 keys with 1–5 revisions; some deleted, some purged and written again."""
    for i in range(KEYS):
        key = f"k.{i:03d}"
        for rev in range(1 + i % HISTORY):
            await kv.put(key, f"{i}:{rev}".encode())
        if i % 7 == 0:
            await kv.delete(key)
        if i % 11 == 0:
            await kv.purge(key)
            await kv.put(key, f"{i}:after-purge".encode())


async def kv_history(kv: KeyValue) -> list[tuple[str, bytes, str]]:
    """Every entry of the bucket in stream order (key, value, operation); revisions ascend.

    nats-py's watcher can say it is caught up before it delivered what the stream holds (seen
    on a loaded machine: an empty history of a filled bucket), so the history is read again
    until it has as many entries as the stream reports messages."""
    deadline = time.monotonic() + 60
    while True:
        stored = (await kv.status()).values
        entries = await _watched_history(kv)
        if len(entries) == stored or time.monotonic() > deadline:
            return entries
        await asyncio.sleep(0.2)


async def _watched_history(kv: KeyValue) -> list[tuple[str, bytes, str]]:
    watcher = await kv.watchall(include_history=True)
    entries: list[tuple[str, bytes, str]] = []
    revisions: list[int] = []
    try:
        while True:
            entry = await watcher.updates(timeout=10)
            if entry is None:
                break
            entries.append((entry.key, entry.value or b"", str(entry.operation or "PUT")))
            revisions.append(int(entry.revision or 0))
    finally:
        await watcher.stop()
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
    return entries


async def key_histories(kv: KeyValue, keys: list[str]) -> dict[str, list[tuple[bytes, str]]]:
    out: dict[str, list[tuple[bytes, str]]] = {}
    for key in keys:
        entries = await key_history(kv, key)
        out[key] = [(e.value or b"", str(e.operation or "PUT")) for e in entries]
    return out


def assert_planned_migrate(
    planned: subprocess.CompletedProcess[str], address: str, header: str
) -> None:
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert f"# {address} will be migrated, keeping its messages" in planned.stdout, planned.stdout
    assert f"~> {header} {{" in planned.stdout
    assert "1 to migrate, 0 to destroy" in planned.stdout
    assert "data loss" not in planned.stdout.lower() and "allow-data-loss" not in planned.stdout


async def assert_bucket_stream(api: JetStreamAPI, kind: str, name: str, settings: Any) -> None:
    """The migrated stream is what the bucket kind creates, on memory storage, and no copy."""
    info = await api.stream_info(("KV_" if kind == "kv" else "OBJ_") + name)
    assert info is not None
    want = stream_from_settings(kind, name, settings, parse_version(api.identity.version))  # type: ignore[arg-type]
    got = info["config"]
    for key, value in want.items():
        if key == "metadata":
            continue
        if value in (False, 0, None):  # the server leaves out false and zero values
            assert not got.get(key), (key, got.get(key), value)
        else:
            assert got.get(key) == value, (key, got.get(key), value)
    assert not got.get("sources")
    assert await api.stream_info(temp_name(str(got["name"]))) is None


async def test_a_kv_bucket_migrates_to_memory_keeping_every_revision(
    api: JetStreamAPI, nc: Client, server: NatsServer, tmp_path: Path, bucket: str
) -> None:
    before_topo = write_topology(tmp_path / "before", "kv_buckets", bucket, storage="file")
    created = await asyncio.to_thread(cli, "apply", server.url, before_topo, "--auto-approve")
    assert created.returncode == 0, created.stdout + created.stderr
    kv = await nc.jetstream().key_value(bucket)
    await fill_kv(kv)
    sample = [f"k.{i:03d}" for i in (0, 4, 7, 11, 22, 77, 154, 499)]
    before, before_keys = await kv_history(kv), await key_histories(kv, sample)
    ops = {op for _, _, op in before}
    assert {"PUT", "DEL", "PURGE"} <= ops, ops

    topo = write_topology(tmp_path / "after", "kv_buckets", bucket, storage="memory")
    planned = await asyncio.to_thread(cli, "plan", server.url, topo, "--detailed-exitcode")
    assert_planned_migrate(planned, f"kv.{bucket}", f'kv "{bucket}"')
    assert f"keeps all {len(before):,} messages" in planned.stdout
    assert "revisions change" in planned.stdout

    applied = await asyncio.to_thread(cli, "apply", server.url, topo, "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = await asyncio.to_thread(cli, "plan", server.url, topo, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr

    kv = await nc.jetstream().key_value(bucket)
    assert await kv_history(kv) == before
    assert await key_histories(kv, sample) == before_keys
    settings = {"description": "migrated", "history": HISTORY, "storage": "memory"}
    settings |= {"allow_direct": True}
    await assert_bucket_stream(api, "kv", bucket, settings)
    # The bucket works as before: history is kept to 5 revisions again.
    for n in range(HISTORY + 2):
        await kv.put("k.001", f"new:{n}".encode())
    assert [e.value for e in await key_history(kv, "k.001")] == [
        f"new:{n}".encode() for n in range(2, HISTORY + 2)
    ]


async def test_an_object_store_migrates_to_memory_keeping_every_chunk(
    api: JetStreamAPI, nc: Client, server: NatsServer, tmp_path: Path, bucket: str
) -> None:
    before_topo = write_topology(tmp_path / "before", "object_stores", bucket, storage="file")
    created = await asyncio.to_thread(cli, "apply", server.url, before_topo, "--auto-approve")
    assert created.returncode == 0, created.stdout + created.stderr
    store = await nc.jetstream().object_store(bucket)
    blobs = {f"obj-{n}": bytes((n * 7 + i) % 251 for i in range(300_000 + n)) for n in range(4)}
    for name, data in blobs.items():
        await store.put(name, data)
    await store.put("obj-1", b"replaced " * 40_000)  # new chunks, the old ones purged
    await store.delete("obj-3")
    await store.put("small", b"tiny")
    blobs["obj-1"] = b"replaced " * 40_000
    del blobs["obj-3"]
    blobs["small"] = b"tiny"

    def listing(infos: list[Any]) -> list[tuple[Any, ...]]:
        return sorted((i.name, i.size, i.chunks, i.digest, bool(i.deleted)) for i in infos)

    before_list = listing(await store.list())
    topo = write_topology(tmp_path / "after", "object_stores", bucket, storage="memory")
    planned = await asyncio.to_thread(cli, "plan", server.url, topo, "--detailed-exitcode")
    assert_planned_migrate(planned, f"objectstore.{bucket}", f'objectstore "{bucket}"')

    applied = await asyncio.to_thread(cli, "apply", server.url, topo, "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = await asyncio.to_thread(cli, "plan", server.url, topo, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr

    store = await nc.jetstream().object_store(bucket)
    assert listing(await store.list()) == before_list
    for name, data in blobs.items():
        assert (await store.get(name)).data == data, name
    settings = {"description": "migrated", "storage": "memory", "allow_direct": True}
    await assert_bucket_stream(api, "objectstore", bucket, settings)


async def test_a_kv_bucket_written_to_while_it_is_migrated_converges_keeping_the_last_values(
    api: JetStreamAPI, nc: Client, server: NatsServer, tmp_path: Path, bucket: str
) -> None:
    """Values written again while the copy runs drop their old revisions from the bucket; the
    copy drops them as well, so the verification agrees and nothing acknowledged is lost."""
    before_topo = write_topology(tmp_path / "before", "kv_buckets", bucket, storage="file")
    created = await asyncio.to_thread(cli, "apply", server.url, before_topo, "--auto-approve")
    assert created.returncode == 0, created.stdout + created.stderr
    kv = await nc.jetstream().key_value(bucket)
    keys = [f"k.{i:03d}" for i in range(200)]
    for rev in range(HISTORY):
        for key in keys:
            await kv.put(key, f"{key}:{rev}".encode())
    acked: dict[str, bytes] = {}
    unsure: set[str] = set()
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            key, value = keys[n % len(keys)], f"live:{n}".encode()
            try:
                await kv.put(key, value)
                acked[key] = value
            except Exception:  # refused during the switch-over (or no answer: maybe stored)
                unsure.add(key)
                await asyncio.sleep(0.01)
            n += 1

    writing = asyncio.create_task(writer())
    topo = write_topology(tmp_path / "after", "kv_buckets", bucket, storage="memory")
    try:
        applied = await asyncio.to_thread(cli, "apply", server.url, topo, "--auto-approve")
    finally:
        stop.set()
        await writing
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert len(acked) > 0
    again = await asyncio.to_thread(cli, "plan", server.url, topo, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    kv = await nc.jetstream().key_value(bucket)
    for key, value in acked.items():
        if key not in unsure:
            assert (await kv.get(key)).value == value, key
    for key in keys[:20]:
        assert len(await key_history(kv, key)) == HISTORY, key


async def test_a_kv_bucket_with_limit_markers_migrates_keeping_per_message_ttls(
    tmp_path: Path,
) -> None:
    """2.11+: a bucket with ``limit_marker_ttl`` (so ``allow_msg_ttl``) holding values and a
    purge that carry ``Nats-TTL`` migrates with those headers and plans clean afterwards."""
    with NatsServer(binary=binary_for("2.15.1")) as srv:
        nc = await nats.connect(srv.url)
        try:
            topo = tmp_path / "t"
            topo.mkdir()
            text = "kv_buckets:\n  ttl:\n    history: 3\n    limit_marker_ttl: 30s\n"
            (topo / "t.yaml").write_text(text + "    storage: file\n", encoding="utf-8")
            created = await asyncio.to_thread(cli, "apply", srv.url, topo, "--auto-approve")
            assert created.returncode == 0, created.stdout + created.stderr
            js = nc.jetstream()
            kv = await js.key_value("ttl")
            for i in range(50):
                await kv.put(f"k{i}", f"v{i}".encode())
            await js.publish("$KV.ttl.short", b"kept an hour", headers={"Nats-TTL": "1h"})
            purge = {"KV-Operation": "PURGE", "Nats-Rollup": "sub", "Nats-TTL": "30s"}
            await js.publish("$KV.ttl.k1", b"", headers=purge)
            before = await kv_history(kv)
            strategy = "    jelmore:\n      replace_strategy: migrate\n"
            (topo / "t.yaml").write_text(text + "    storage: memory\n" + strategy, "utf-8")
            applied = await asyncio.to_thread(cli, "apply", srv.url, topo, "--auto-approve")
            assert applied.returncode == 0, applied.stdout + applied.stderr
            again = await asyncio.to_thread(cli, "plan", srv.url, topo, "--detailed-exitcode")
            assert again.returncode == 0, again.stdout + again.stderr
            kv = await js.key_value("ttl")
            assert await kv_history(kv) == before
            short = await js.get_last_msg("KV_ttl", "$KV.ttl.short")
            assert (short.headers or {}).get("Nats-TTL") == "1h"
            purged = await js.get_last_msg("KV_ttl", "$KV.ttl.k1")
            assert (purged.headers or {}).get("Nats-TTL") == "30s"
        finally:
            await nc.close()


async def test_apply_killed_while_migrating_a_kv_bucket_converges_when_run_again(
    api: JetStreamAPI, nc: Client, server: NatsServer, tmp_path: Path, bucket: str
) -> None:
    """Killed as the bucket's stream is re-created: every value is then only in the copy."""
    before_topo = write_topology(tmp_path / "before", "kv_buckets", bucket, storage="file")
    created = await asyncio.to_thread(cli, "apply", server.url, before_topo, "--auto-approve")
    assert created.returncode == 0, created.stdout + created.stderr
    kv = await nc.jetstream().key_value(bucket)
    await fill_kv(kv)
    before = await kv_history(kv)
    topo = write_topology(tmp_path / "after", "kv_buckets", bucket, storage="memory")
    address = f"kv.{bucket}"
    await asyncio.to_thread(apply_until_killed, server.url, topo, address, Step.CREATE_NEW.value)
    assert await api.stream_info(temp_name(f"KV_{bucket}")) is not None  # killed mid-migration

    planned = await asyncio.to_thread(cli, "plan", server.url, topo, "--detailed-exitcode")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "will be migrated (resume" in planned.stdout
    assert "0 to destroy" in planned.stdout and "data loss" not in planned.stdout.lower()
    assert f"stream.KV_{bucket}" not in planned.stdout

    rerun = await asyncio.to_thread(cli, "apply", server.url, topo, "--auto-approve")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    done = await asyncio.to_thread(cli, "plan", server.url, topo, "--detailed-exitcode")
    assert done.returncode == 0, done.stdout + done.stderr
    assert await kv_history(await nc.jetstream().key_value(bucket)) == before
