"""Server facts about KV buckets and object stores that the bucket resources will rely on.

Checked on the oldest and the newest supported server (one server per version for the module):
the golden configs of ``tests/support/bucket_configs.py`` still match what the server stores; which
bucket setting changes ``STREAM.UPDATE`` accepts in place and which it refuses (with the error
code); what lowering history or size limits does to stored data; and that bucket streams created
through the raw API, as jelmore-infra will create them, work with nats-py's KV and object store
clients. docs/buckets.md states the facts in prose.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import BadBucketError, KeyNotFoundError, NoStreamResponseError

from tests.support import bucket_configs as bc
from tests.support.bucket_configs import fact_versions
from tests.support.natsserver import NatsCluster, NatsServer, binary_for
from tests.support.waiting import unique, wait_for

S = 1_000_000_000
Version = tuple[int, int, int]
#: The oldest and the newest supported line; JELMORE_FACT_VERSIONS=all (or a comma list) widens it.
VERSIONS = fact_versions()
PEDANTIC_SINCE = (2, 11, 0)

# Error codes the server answers with (``err_code``).
STREAM_INVALID_CONFIG = 10052
MIRROR_CANNOT_BE_UPDATED = 10055
REPLICAS_NOT_SUPPORTED = 10074
MAX_BYTES_EXCEEDED = 10077
MSG_SIZE_EXCEEDED = 10054
PEDANTIC = 10157


@pytest.fixture(scope="module", params=VERSIONS)
def server(request: pytest.FixtureRequest) -> Iterator[NatsServer]:
    with NatsServer(binary=binary_for(request.param)) as srv:
        yield srv


def version_of(server: NatsServer) -> str:
    return Path(server.binary).parent.name


def vt(server: NatsServer) -> tuple[int, int, int]:
    return bc.parse_version(version_of(server))


def pedantic(server: NatsServer) -> bool:
    """jelmore-infra sends ``pedantic`` from 2.11 on; the facts are checked the same way."""
    return vt(server) >= PEDANTIC_SINCE


def user_part(value: Any) -> Any:
    """A metadata map without the ``_nats.*`` keys the server adds itself (other values as is)."""
    if isinstance(value, dict) and any(str(k).startswith("_nats.") for k in value):
        return {k: v for k, v in value.items() if not k.startswith("_nats.")}
    return value


async def api(nc: Client, subject: str, body: Any = None) -> dict[str, Any]:
    payload = b"" if body is None else json.dumps(body).encode()
    reply = await nc.request(f"$JS.API.{subject}", payload, timeout=10)
    return dict(json.loads(reply.data))


async def info(nc: Client, stream: str) -> dict[str, Any]:
    reply = await api(nc, f"STREAM.INFO.{stream}")
    assert "error" not in reply, reply
    return reply


async def create(nc: Client, body: dict[str, Any], *, ped: bool = False) -> dict[str, Any]:
    request = {**body, "pedantic": True} if ped else body
    return await api(nc, f"STREAM.CREATE.{body['name']}", request)


async def update(nc: Client, body: dict[str, Any], *, ped: bool = False) -> dict[str, Any]:
    request = {**body, "pedantic": True} if ped else body
    return await api(nc, f"STREAM.UPDATE.{body['name']}", request)


def err_code(reply: dict[str, Any]) -> int | None:
    error = reply.get("error")
    return None if error is None else int(error["err_code"])


def go_kv(bucket: str, version: str, **changes: Any) -> dict[str, Any]:
    """nats.go's body for a minimal KV bucket named ``bucket``, with ``changes`` applied."""
    body = bc.nats_go_request("kv_min", version)
    body.update(name=f"KV_{bucket}", subjects=[f"$KV.{bucket}.>"], **changes)
    return body


def go_obj(bucket: str, version: str, **changes: Any) -> dict[str, Any]:
    body = bc.nats_go_request("obj_min", version)
    body.update(name=f"OBJ_{bucket}", subjects=[f"$O.{bucket}.C.>", f"$O.{bucket}.M.>"], **changes)
    return body


async def revisions(nc: Client, bucket: str) -> list[tuple[int, str, bytes]]:
    """Every stored message of the bucket as (sequence, key, value), read from the stream."""
    state = (await info(nc, f"KV_{bucket}"))["state"]
    out = []
    for seq in range(state["first_seq"], state["last_seq"] + 1):
        reply = await api(nc, f"STREAM.MSG.GET.KV_{bucket}", {"seq": seq})
        if "error" not in reply:
            msg = reply["message"]
            key = msg["subject"].removeprefix(f"$KV.{bucket}.")
            out.append((seq, key, base64.b64decode(msg.get("data", ""))))
    return out


# -- the golden configs ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(bc.NATS_PY))
async def test_a_nats_py_bucket_is_stored_exactly_as_captured(
    server: NatsServer, nc: Client, key: str
) -> None:
    stream = await bc.create_with_nats_py(nc.jetstream(), key, version_of(server))
    try:
        assert (await info(nc, stream))["config"] == bc.golden(version_of(server), "nats_py", key)
    finally:
        await api(nc, f"STREAM.DELETE.{stream}")


async def test_nats_go_bucket_bodies_are_accepted_and_stored_exactly_as_captured(
    server: NatsServer, nc: Client
) -> None:
    version = version_of(server)
    created: list[str] = []
    try:
        for key in bc.NATS_GO:  # in order: the mirror and the sourcing bucket need kv_min
            body = bc.nats_go_request(key, version)
            reply = await create(nc, body)
            assert err_code(reply) is None, (key, reply)
            created.append(body["name"])
            assert (await info(nc, body["name"]))["config"] == bc.golden(version, "nats_go", key)
    finally:
        for name in reversed(created):
            await api(nc, f"STREAM.DELETE.{name}")


@pytest.mark.parametrize("version", sorted(bc.GOLDEN, key=bc.parse_version))
def test_golden_data_shows_where_nats_py_and_nats_go_buckets_differ(version: str) -> None:
    py, go = bc.GOLDEN[version]["nats_py"], bc.GOLDEN[version]["nats_go"]
    api_level_1 = bc.parse_version(version) >= bc.API_LEVEL_1_SINCE
    # nats-py leaves direct get off unless asked; nats.go always turns it on.
    assert py["kv_min"]["allow_direct"] is False and go["kv_min"]["allow_direct"] is True
    # nats-py asks for per-message TTLs on every KV bucket (a one-way flag); nats.go only with
    # limit markers. 2.10 does not know the field and drops it.
    assert py["kv_min"].get("allow_msg_ttl") is (True if api_level_1 else None)
    assert go["kv_min"].get("allow_msg_ttl") is (False if api_level_1 else None)
    # nats-py sends no placement for KV buckets, but does for object stores.
    assert "placement" not in py["kv_full"] and "placement" in py["obj_full"]
    # The server fills what the clients leave out.
    for config in (go["obj_min"], py["obj_min"]):
        assert config["max_msgs"] == config["max_consumers"] == -1
        assert config["max_msgs_per_subject"] == config["max_msg_size"] == -1
        assert config["duplicate_window"] == 120 * S
        assert config["deny_delete"] is False
    # An object store with a TTL under two minutes gets it as its duplicate window.
    assert py["obj_full"]["duplicate_window"] == py["obj_full"]["max_age"] == 60 * S
    # `nats obj add` sends an empty placement: 2.10 keeps "{}", later lines drop it.
    assert go["obj_natscli"].get("placement") == ({} if not api_level_1 else None)
    # 2.11+ adds its own _nats.* metadata; 2.10 adds none.
    server_keys = {k for k in py["kv_min"].get("metadata", {}) if k.startswith("_nats.")}
    assert server_keys == (
        {"_nats.level", "_nats.req.level", "_nats.ver"} if api_level_1 else set()
    )


# -- in place or replace --------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One bucket setting change sent as ``STREAM.UPDATE`` of a fresh nats.go-shaped bucket."""

    name: str
    change: Callable[[dict[str, Any]], None]
    base: dict[str, Any] = field(default_factory=dict)
    kind: str = "kv"
    #: ``None`` = accepted, else the error code; a function of the server version where it differs.
    refused: int | Callable[[Version], int | None] | None = None
    #: Fields whose stored value after an accepted update differs from what was sent.
    stored: dict[str, Any] = field(default_factory=dict)
    #: Only on servers of at least this version (fields older servers do not know).
    since: tuple[int, int, int] = (0, 0, 0)

    def expected(self, version: Version) -> int | None:
        return self.refused(version) if callable(self.refused) else self.refused


def when_pedantic(code: int) -> Callable[[Version], int | None]:
    return lambda version: code if version >= PEDANTIC_SINCE else None


def _set(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda config: config.update(values)


def _drop(*keys: str) -> Callable[[dict[str, Any]], None]:
    def go(config: dict[str, Any]) -> None:
        for key in keys:
            config.pop(key, None)

    return go


CHANGES = [
    Change("history up", _set(max_msgs_per_subject=10), base={"max_msgs_per_subject": 5}),
    Change("history down", _set(max_msgs_per_subject=2), base={"max_msgs_per_subject": 5}),
    Change("history above the clients' 64", _set(max_msgs_per_subject=65)),
    Change(
        "history 0 means unlimited",
        _set(max_msgs_per_subject=0),
        stored={"max_msgs_per_subject": -1},
    ),
    Change(
        "ttl set with a matching duplicate window", _set(max_age=60 * S, duplicate_window=60 * S)
    ),
    Change(
        "ttl set below the old duplicate window",
        _set(max_age=60 * S),
        refused=STREAM_INVALID_CONFIG,
    ),
    Change(
        "ttl removed, window back to 2 min",
        _set(max_age=0, duplicate_window=120 * S),
        base={"max_age": 60 * S, "duplicate_window": 60 * S},
    ),
    Change("max_bytes", _set(max_bytes=1 << 20)),
    Change("max_value_size", _set(max_msg_size=1024)),
    Change("compression on", _set(compression="s2")),
    Change("compression off", _set(compression="none"), base={"compression": "s2"}),
    Change("storage", _set(storage="memory"), refused=STREAM_INVALID_CONFIG),
    Change(
        "replicas on a single server",
        _set(num_replicas=3),
        refused=lambda v: REPLICAS_NOT_SUPPORTED if v >= (2, 14, 0) else None,
    ),
    Change("description", _set(description="new")),
    Change("metadata", _set(metadata={"owner": "team-b"})),
    Change("direct get off", _set(allow_direct=False)),
    Change("republish added", _set(republish={"src": ">", "dest": "repub.>"})),
    Change(
        "republish removed", _drop("republish"), base={"republish": {"src": ">", "dest": "rp.>"}}
    ),
    Change("placement on a single server", _set(placement={"cluster": "elsewhere"})),
    Change("deny_delete off", _set(deny_delete=False), refused=STREAM_INVALID_CONFIG),
    Change("discard old", _set(discard="old")),
    Change(
        "subjects swapped for a placeholder",
        lambda c: c.update(subjects=[f"frozen.{c['name']}"]),
    ),
    Change(
        "sources added",
        _set(
            sources=[
                {
                    "name": "KV_other",
                    "subject_transforms": [{"src": "$KV.other.>", "dest": "$KV.x.>"}],
                }
            ]
        ),
    ),
    Change(
        "limit marker ttl without allow_msg_ttl",
        _set(subject_delete_marker_ttl=5 * S),
        refused=when_pedantic(STREAM_INVALID_CONFIG),  # without pedantic the server turns TTLs on
        since=(2, 11, 0),
    ),
    Change(
        "limit marker ttl with allow_msg_ttl",
        _set(subject_delete_marker_ttl=5 * S, allow_msg_ttl=True),
        since=(2, 11, 0),
    ),
    Change(
        "limit marker ttl removed",
        _drop("subject_delete_marker_ttl"),
        base={"subject_delete_marker_ttl": 5 * S, "allow_msg_ttl": True},
        since=(2, 11, 0),
    ),
    Change(
        "allow_msg_ttl off",
        _set(allow_msg_ttl=False),
        base={"allow_msg_ttl": True},
        refused=STREAM_INVALID_CONFIG,
        since=(2, 11, 0),
    ),
    Change("object store compression on", _set(compression="s2"), kind="obj"),
    Change(
        "object store storage",
        _set(storage="memory"),
        kind="obj",
        refused=STREAM_INVALID_CONFIG,
    ),
    Change(
        "object store ttl with the window left out",
        lambda c: (c.update(max_age=60 * S), c.pop("duplicate_window")),
        kind="obj",
        # 2.10 caps the window to the TTL; pedantic 2.11+ refuses the silent change.
        refused=when_pedantic(PEDANTIC),
        stored={"duplicate_window": 60 * S},
    ),
]

CHANGE_PARAMS = [pytest.param(change, id=change.name.replace(" ", "-")) for change in CHANGES]


@pytest.mark.parametrize("change", CHANGE_PARAMS)
async def test_bucket_setting_change_is_accepted_in_place_or_refused(
    server: NatsServer, nc: Client, change: Change
) -> None:
    version = version_of(server)
    if vt(server) < change.since:
        # The field is unknown to this server: nothing to learn, the case is the newer line's.
        assert bc.parse_version(version) < bc.API_LEVEL_1_SINCE
        return
    bucket = unique("chg")
    make = go_kv if change.kind == "kv" else go_obj
    body = make(bucket, version, **change.base)
    created = await create(nc, body)
    assert err_code(created) is None, created
    try:
        before = (await info(nc, body["name"]))["config"]
        wanted = copy.deepcopy(before)
        change.change(wanted)
        reply = await update(nc, wanted, ped=pedantic(server))
        after = (await info(nc, body["name"]))["config"]
        expected = change.expected(vt(server))
        if expected is None:
            assert err_code(reply) is None, reply
            for key in set(wanted) | set(after):
                want = change.stored.get(key, wanted.get(key))
                assert user_part(after.get(key)) == user_part(want), (key, after.get(key), want)
        else:
            assert err_code(reply) == expected, reply
            assert after == before
    finally:
        await api(nc, f"STREAM.DELETE.{body['name']}")


async def test_a_kv_mirror_cannot_be_changed_and_is_removable_only_from_2_12(
    server: NatsServer, nc: Client
) -> None:
    version = version_of(server)
    origin, other, mirror = unique("orig"), unique("other"), unique("mir")
    for name in (origin, other):
        assert err_code(await create(nc, go_kv(name, version))) is None
    body = bc.nats_go_request("kv_mirror", version)
    body.update(name=f"KV_{mirror}", mirror={"name": f"KV_{origin}"})
    assert err_code(await create(nc, body)) is None
    try:
        current = (await info(nc, body["name"]))["config"]
        retarget = {**copy.deepcopy(current), "mirror": {"name": f"KV_{other}"}}
        assert err_code(await update(nc, retarget)) == MIRROR_CANNOT_BE_UPDATED
        filtered = {
            **copy.deepcopy(current),
            "mirror": {"name": f"KV_{origin}", "filter_subject": f"$KV.{origin}.a"},
        }
        assert err_code(await update(nc, filtered)) == MIRROR_CANNOT_BE_UPDATED
        promoted = copy.deepcopy(current)
        promoted.pop("mirror")
        promoted.update(subjects=[f"$KV.{mirror}.>"], mirror_direct=False)
        reply = await update(nc, promoted)
        if vt(server) >= (2, 12, 0):
            assert err_code(reply) is None, reply
            assert "mirror" not in (await info(nc, body["name"]))["config"]
        else:
            assert err_code(reply) == MIRROR_CANNOT_BE_UPDATED
        # A bucket that is not a mirror can never become one.
        plain = (await info(nc, f"KV_{other}"))["config"]
        plain.pop("subjects")
        plain.update(mirror={"name": f"KV_{origin}"}, mirror_direct=True)
        assert err_code(await update(nc, plain)) == MIRROR_CANNOT_BE_UPDATED
    finally:
        for name in (mirror, other, origin):
            await api(nc, f"STREAM.DELETE.KV_{name}")


async def test_a_mirror_takes_mirror_direct_from_its_origin(server: NatsServer, nc: Client) -> None:
    version = version_of(server)
    origin, mirror = unique("pyorig"), unique("pymir")
    await nc.jetstream().create_key_value(bucket=origin)  # nats-py: direct get off
    body = bc.nats_go_request("kv_mirror", version)
    body.update(name=f"KV_{mirror}", mirror={"name": f"KV_{origin}"}, mirror_direct=True)
    try:
        if pedantic(server):
            reply = await create(nc, body, ped=True)
            assert err_code(reply) == PEDANTIC, reply
        reply = await create(nc, body)
        assert err_code(reply) is None, reply
        assert reply["config"]["mirror_direct"] is False
    finally:
        await api(nc, f"STREAM.DELETE.KV_{mirror}")
        await api(nc, f"STREAM.DELETE.KV_{origin}")


async def test_a_ttl_under_two_minutes_caps_an_omitted_duplicate_window_unless_pedantic(
    server: NatsServer, nc: Client
) -> None:
    name = unique("DW")
    body = {"name": name, "subjects": [f"{name}.>"], "max_age": 60 * S}
    try:
        if pedantic(server):
            assert err_code(await create(nc, body, ped=True)) == PEDANTIC
        reply = await create(nc, body)
        assert reply["config"]["duplicate_window"] == 60 * S
        too_long = {
            "name": name + "x",
            "subjects": [f"{name}x.>"],
            "max_age": 60 * S,
            "duplicate_window": 120 * S,
        }
        assert err_code(await create(nc, too_long)) == STREAM_INVALID_CONFIG
    finally:
        await api(nc, f"STREAM.DELETE.{name}")


async def test_a_nats_go_shaped_update_of_a_nats_py_bucket_is_refused_from_2_11(
    server: NatsServer, nc: Client
) -> None:
    """nats.go (``nats kv edit``) leaves ``allow_msg_ttl`` out unless limit markers are on, which
    would switch off the message TTLs nats-py turned on: a one-way flag."""
    version = version_of(server)
    bucket = unique("pyedit")
    await nc.jetstream().create_key_value(bucket=bucket)
    try:
        reply = await update(nc, go_kv(bucket, version, max_msgs_per_subject=3))
        if vt(server) >= bc.API_LEVEL_1_SINCE:
            assert err_code(reply) == STREAM_INVALID_CONFIG, reply
            assert "message TTL" in reply["error"]["description"]
        else:
            assert err_code(reply) is None, reply
    finally:
        await api(nc, f"STREAM.DELETE.KV_{bucket}")


async def test_a_mirror_never_and_a_sourcing_stream_from_2_14_gets_no_default_window(
    server: NatsServer, nc: Client
) -> None:
    origin, mirror, sourcing = unique("WO"), unique("WM"), unique("WS")
    await create(nc, {"name": origin, "subjects": [f"{origin}.>"]})
    try:
        mirrored = await create(nc, {"name": mirror, "mirror": {"name": origin}})
        assert "duplicate_window" not in mirrored["config"]
        sourced = await create(nc, {"name": sourcing, "sources": [{"name": origin}]})
        window = sourced["config"].get("duplicate_window")
        assert window == (None if vt(server) >= (2, 14, 0) else 120 * S)
    finally:
        for name in (sourcing, mirror, origin):
            await api(nc, f"STREAM.DELETE.{name}")


# -- what limit changes do to stored data ---------------------------------------------------------


async def test_lowering_history_drops_older_revisions_at_once_and_raising_it_restores_none(
    server: NatsServer, nc: Client
) -> None:
    bucket = unique("hist")
    js = nc.jetstream()
    kv = await js.create_key_value(bucket=bucket, history=5)
    try:
        for i in range(5):
            await kv.put("a", f"a{i}".encode())
        for i in range(3):
            await kv.put("b", f"b{i}".encode())
        await kv.delete("b")  # the delete marker is a revision too
        config = (await info(nc, f"KV_{bucket}"))["config"]
        reply = await update(nc, {**config, "max_msgs_per_subject": 2}, ped=pedantic(server))
        assert reply["state"]["messages"] == 4  # already in the update's reply
        # Newest two revisions per key, the delete marker counting as one (seq, key, value).
        kept = [(4, "a", b"a3"), (5, "a", b"a4"), (8, "b", b"b2"), (9, "b", b"")]
        assert await revisions(nc, bucket) == kept
        await update(nc, {**config, "max_msgs_per_subject": 5}, ped=pedantic(server))
        assert await revisions(nc, bucket) == kept
    finally:
        await js.delete_key_value(bucket)


async def test_lowering_size_limits_keeps_stored_values_and_refuses_new_ones(
    server: NatsServer, nc: Client
) -> None:
    bucket = unique("size")
    js = nc.jetstream()
    kv = await js.create_key_value(bucket=bucket, history=10)
    try:
        for i in range(10):
            await kv.put(f"k{i}", b"x" * 1000)
        config = (await info(nc, f"KV_{bucket}"))["config"]
        assert (
            err_code(await update(nc, {**config, "max_bytes": 3000}, ped=pedantic(server))) is None
        )
        state = (await info(nc, f"KV_{bucket}"))["state"]
        assert state["messages"] == 10 and state["bytes"] > 3000  # discard new: nothing removed
        ack = json.loads((await nc.request(f"$KV.{bucket}.new", b"y", timeout=5)).data)
        assert ack["error"]["err_code"] == MAX_BYTES_EXCEEDED
        smaller = {**config, "max_bytes": -1, "max_msg_size": 10}
        assert err_code(await update(nc, smaller, ped=pedantic(server))) is None
        assert (await kv.get("k1")).value == b"x" * 1000
        ack = json.loads((await nc.request(f"$KV.{bucket}.new", b"y" * 100, timeout=5)).data)
        assert ack["error"]["err_code"] == MSG_SIZE_EXCEEDED
    finally:
        await js.delete_key_value(bucket)


# -- raw-API buckets work with the clients --------------------------------------------------------


async def test_a_kv_stream_created_through_the_raw_api_works_with_nats_py(
    server: NatsServer, nc: Client
) -> None:
    version = version_of(server)
    bucket = unique("rawkv")
    body = go_kv(
        bucket, version, max_msgs_per_subject=3, metadata={"jelmore.managed-by": "jelmore-infra"}
    )
    assert err_code(await create(nc, body, ped=pedantic(server))) is None
    try:
        kv = await nc.jetstream().key_value(bucket)
        watcher = await kv.watchall()
        first = await kv.put("greeting", b"hello")
        await kv.put("greeting", b"hello again")
        assert (await kv.get("greeting")).value == b"hello again"
        assert (await kv.get("greeting", revision=first)).value == b"hello"
        seen = []
        while len(seen) < 2:
            entry = await watcher.updates(timeout=5)
            if entry is not None:
                seen.append(entry.value)
        assert seen == [b"hello", b"hello again"]
        await watcher.stop()
        await kv.delete("greeting")
        with pytest.raises(KeyNotFoundError):
            await kv.get("greeting")
    finally:
        await api(nc, f"STREAM.DELETE.KV_{bucket}")


async def test_an_object_store_stream_created_through_the_raw_api_works_with_nats_py(
    server: NatsServer, nc: Client
) -> None:
    bucket = unique("rawobj")
    body = go_obj(bucket, version_of(server), max_age=60 * S, duplicate_window=60 * S)
    assert err_code(await create(nc, body, ped=pedantic(server))) is None
    try:
        store = await nc.jetstream().object_store(bucket)
        blob = bytes(range(256)) * 1200  # about 300 KiB: three chunks of 128 KiB
        await store.put("report.bin", blob)
        result = await store.get("report.bin")
        assert result.data == blob
        assert result.info.chunks == 3
        state = (await info(nc, f"OBJ_{bucket}"))["state"]
        assert state["messages"] == 4  # three chunks and one metadata message
    finally:
        await api(nc, f"STREAM.DELETE.OBJ_{bucket}")


async def test_nats_py_refuses_a_kv_stream_without_a_per_key_limit(
    server: NatsServer, nc: Client
) -> None:
    bucket = unique("nolimit")
    body = go_kv(bucket, version_of(server), max_msgs_per_subject=-1)
    assert err_code(await create(nc, body)) is None
    try:
        with pytest.raises(BadBucketError):
            await nc.jetstream().key_value(bucket)
    finally:
        await api(nc, f"STREAM.DELETE.KV_{bucket}")


async def test_a_kv_bucket_sourcing_another_through_the_kv_transform_serves_its_keys(
    server: NatsServer, nc: Client
) -> None:
    version = version_of(server)
    origin, copy_ = unique("srcorig"), unique("srccopy")
    js = nc.jetstream()
    kv_origin = await js.create_key_value(bucket=origin)
    await kv_origin.put("colour", b"blue")
    transform = [{"src": f"$KV.{origin}.>", "dest": f"$KV.{copy_}.>"}]
    body = go_kv(
        copy_, version, sources=[{"name": f"KV_{origin}", "subject_transforms": transform}]
    )
    assert err_code(await create(nc, body)) is None
    try:
        kv_copy = await js.key_value(copy_)

        async def copied() -> bool:
            try:
                return (await kv_copy.get("colour")).value == b"blue"
            except KeyNotFoundError:
                return False

        await wait_for(copied, "the sourced key")
    finally:
        await api(nc, f"STREAM.DELETE.KV_{copy_}")
        await api(nc, f"STREAM.DELETE.KV_{origin}")


# -- replicas in a cluster ------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_kv_replicas_change_in_place_in_a_cluster_and_keep_the_values(version: str) -> None:
    with NatsCluster(binary=binary_for(version)) as cluster:
        client = await nats.connect(servers=cluster.urls)
        try:
            kv = await client.jetstream().create_key_value(bucket="rep", history=3)

            async def first_put() -> bool:
                # Right after the create, the node this client uses may not know the stream's
                # subjects yet (no responders); a retry settles it.
                try:
                    await kv.put("k", b"v0")
                except NoStreamResponseError:
                    return False
                return True

            await wait_for(first_put, "the new bucket to take writes")
            for i in range(1, 4):
                await kv.put("k", f"v{i}".encode())
            config = (await info(client, "KV_rep"))["config"]
            for replicas in (3, 1):
                reply = await update(client, {**config, "num_replicas": replicas})
                assert err_code(reply) is None, reply

                async def settled(replicas: int = replicas) -> bool:
                    cl = (await info(client, "KV_rep")).get("cluster", {})
                    peers = cl.get("replicas") or []
                    return len(peers) == replicas - 1

                await wait_for(settled, f"R{replicas}", within=20)
                assert (await info(client, "KV_rep"))["state"]["messages"] == 3
            assert (await kv.get("k")).value == b"v3"
            moved = {**config, "num_replicas": 3, "placement": {"cluster": "jelmore-test"}}
            assert err_code(await update(client, moved)) == 10123  # move and scale at once
        finally:
            await client.close()
