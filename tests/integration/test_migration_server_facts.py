"""Server facts a data-preserving stream migration (copy through ``sources``) relies on.

Checked on the oldest and the newest supported server (one server per version for the module):
what a source copies and adds, how duplicate message ids behave while copying, how to tell that a
copy has caught up, that sources can be dropped in place, how a durable consumer can resume on the
copy, and what happens around deleting and re-creating a stream name. docs/migration-facts.md
states the facts in prose.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js.errors import NoStreamResponseError

from tests.support.bucket_configs import fact_versions, parse_version
from tests.support.natsserver import NatsServer, binary_for
from tests.support.waiting import unique, wait_for

S = 1_000_000_000
#: The oldest and the newest supported line; JELMORE_FACT_VERSIONS=all (or a comma list) widens it.
VERSIONS = fact_versions()
STREAM_INVALID_CONFIG = 10052


@pytest.fixture(scope="module", params=VERSIONS)
def server(request: pytest.FixtureRequest) -> Iterator[NatsServer]:
    with NatsServer(binary=binary_for(request.param)) as srv:
        yield srv


def vt(server: NatsServer) -> tuple[int, int, int]:
    return parse_version(Path(server.binary).parent.name)


def server_log(server: NatsServer) -> Path:
    return next(Path(str(server.store_dir)).glob("*.log"))


async def api(nc: Client, subject: str, body: Any = None) -> dict[str, Any]:
    payload = b"" if body is None else json.dumps(body).encode()
    reply = await nc.request(f"$JS.API.{subject}", payload, timeout=10)
    return dict(json.loads(reply.data))


async def ok(nc: Client, subject: str, body: Any = None) -> dict[str, Any]:
    reply = await api(nc, subject, body)
    assert "error" not in reply, (subject, reply)
    return reply


async def state(nc: Client, stream: str) -> dict[str, Any]:
    return dict((await ok(nc, f"STREAM.INFO.{stream}"))["state"])


async def wait_count(nc: Client, stream: str, count: int) -> None:
    async def reached() -> bool:
        return (await state(nc, stream))["messages"] >= count

    await wait_for(reached, f"{stream} to hold {count} messages")


async def wait_until_copied(nc: Client, copy: str, source: str, origin_seq: int) -> None:
    """Wait until the newest message of ``copy`` came from ``origin_seq`` of ``source``.

    The copy's count cannot tell when the origin held dropped duplicates, and the sources' lag
    stays 0; the origin header of the newest copy can.
    """

    async def copied() -> bool:
        last = (await state(nc, copy))["last_seq"]
        return last > 0 and origin(await message(nc, copy, last)) == (source, origin_seq)

    await wait_for(copied, f"{copy} to copy {source} up to {origin_seq}")


async def message(nc: Client, stream: str, seq: int) -> dict[str, Any]:
    """``STREAM.MSG.GET`` by sequence: subject, data, time and the headers as (name, value)."""
    raw = (await ok(nc, f"STREAM.MSG.GET.{stream}", {"seq": seq}))["message"]
    headers: list[tuple[str, str]] = []
    if raw.get("hdrs"):
        lines = base64.b64decode(raw["hdrs"]).decode().split("\r\n")[1:]
        headers = [tuple(line.split(": ", 1)) for line in lines if line]  # type: ignore[misc]
    return {
        "subject": raw["subject"],
        "data": base64.b64decode(raw.get("data", "")),
        "time": raw["time"],
        "headers": headers,
    }


async def stored(nc: Client, stream: str) -> list[dict[str, Any]]:
    info = await state(nc, stream)
    out = []
    for seq in range(info["first_seq"], info["last_seq"] + 1):
        reply = await api(nc, f"STREAM.MSG.GET.{stream}", {"seq": seq})
        if "error" not in reply:
            out.append({**await message(nc, stream, seq), "seq": seq})
    return out


def origin(msg: dict[str, Any]) -> tuple[str, int]:
    """Stream and sequence from ``Nats-Stream-Source`` (its first two words on every version)."""
    (value,) = [v for k, v in msg["headers"] if k == "Nats-Stream-Source"]
    name, seq = value.split(" ")[:2]
    return name, int(seq)


def ts(text: str) -> float:
    return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()


async def origin_stream(nc: Client, name: str, **config: Any) -> None:
    await ok(nc, f"STREAM.CREATE.{name}", {"name": name, "subjects": [f"{name}.>"], **config})


async def source_stream(nc: Client, name: str, source: str, **config: Any) -> dict[str, Any]:
    body = {"name": name, "sources": [{"name": source}], **config}
    return await ok(nc, f"STREAM.CREATE.{name}", body)


async def delete(nc: Client, *streams: str) -> None:
    for name in streams:
        await api(nc, f"STREAM.DELETE.{name}")


# -- what a source copies -------------------------------------------------------------------------


async def test_a_source_copies_subject_payload_and_headers_and_adds_one_origin_header(
    nc: Client,
) -> None:
    a, b, c = unique("ORIG"), unique("COPY"), unique("BACK")
    js = nc.jetstream()
    await origin_stream(nc, a)
    await js.publish(f"{a}.x", b"one", headers={"Nats-Msg-Id": "id-1", "X-Trace": "t1"})
    await js.publish(f"{a}.y", b"two", headers={"Nats-Msg-Id": "id-2"})
    await js.publish(f"{a}.x", b"three")
    try:
        await source_stream(nc, b, a)
        await wait_count(nc, b, 3)
        originals, copies = await stored(nc, a), await stored(nc, b)
        for original, copied in zip(originals, copies, strict=True):
            assert copied["subject"] == original["subject"]
            assert copied["data"] == original["data"]
            added = [h for h in copied["headers"] if h not in original["headers"]]
            assert [name for name, _ in added] == ["Nats-Stream-Source"]
            assert origin(copied) == (a, original["seq"])
        # Copying the copy back replaces the origin header instead of adding a second one.
        await source_stream(nc, c, b)
        await wait_count(nc, c, 3)
        for copied, back in zip(copies, await stored(nc, c), strict=True):
            assert [k for k, _ in back["headers"]].count("Nats-Stream-Source") == 1
            assert origin(back) == (b, copied["seq"])
            assert [h for h in back["headers"] if h[0] != "Nats-Stream-Source"] == [
                h for h in copied["headers"] if h[0] != "Nats-Stream-Source"
            ]
    finally:
        await delete(nc, c, b, a)


async def test_copies_are_stamped_with_the_copy_time_so_max_age_restarts(nc: Client) -> None:
    a, b = unique("AGED"), unique("FRESH")
    await origin_stream(nc, a)
    await nc.jetstream().publish(f"{a}.x", b"old")
    try:
        published = ts((await state(nc, a))["last_ts"])

        async def older_than_max_age() -> bool:
            return time.time() - published > 1.2

        await wait_for(older_than_max_age, "the message to age past one second")
        # With the original time stamp the copy would be expired on arrival.
        await source_stream(nc, b, a, max_age=1 * S, duplicate_window=S // 2)
        await wait_count(nc, b, 1)
        copied = await message(nc, b, 1)
        assert ts(copied["time"]) - published > 1.0
    finally:
        await delete(nc, b, a)


async def test_a_per_message_ttl_header_is_copied_and_honoured_only_where_ttls_are_allowed(
    server: NatsServer, nc: Client
) -> None:
    a, keep, expire = unique("TTL"), unique("NOTTL"), unique("WITHTTL")
    ttl_known = vt(server) >= (2, 11, 0)
    await origin_stream(nc, a, **({"allow_msg_ttl": True} if ttl_known else {}))
    await nc.jetstream().publish(f"{a}.x", b"short-lived", headers={"Nats-TTL": "2s"})
    try:
        await source_stream(nc, keep, a)
        await source_stream(nc, expire, a, allow_msg_ttl=True)  # 2.10 ignores the field
        await wait_count(nc, keep, 1)
        await wait_count(nc, expire, 1)
        assert ("Nats-TTL", "2s") in (await message(nc, expire, 1))["headers"]
        if ttl_known:

            async def expired() -> bool:
                return (await state(nc, expire))["messages"] == 0

            await wait_for(expired, "the copied message to expire", within=10)
            assert (await state(nc, a))["messages"] == 0
        else:
            assert (await state(nc, a))["messages"] == 1  # just a header to 2.10
        assert (await state(nc, keep))["messages"] == 1  # a copy without TTLs keeps it
    finally:
        await delete(nc, keep, expire, a)


# -- duplicate message ids while copying ----------------------------------------------------------


async def test_a_reused_msg_id_stalls_the_copy_before_2_12_and_is_dropped_after_unless_windowless(
    server: NatsServer, nc: Client
) -> None:
    a, default, windowed = unique("DUPS"), unique("DEFWIN"), unique("EXPWIN")
    js = nc.jetstream()
    await origin_stream(nc, a, duplicate_window=S // 10)
    await js.publish(f"{a}.x", b"first", headers={"Nats-Msg-Id": "same"})
    first = time.monotonic()

    async def window_passed() -> bool:
        return time.monotonic() - first > 0.3

    await wait_for(window_passed, "the origin's 100 ms window to pass")
    ack = await js.publish(f"{a}.x", b"again", headers={"Nats-Msg-Id": "same"})
    assert not ack.duplicate  # the origin holds both
    await js.publish(f"{a}.y", b"after")
    try:
        created = await source_stream(nc, default, a)
        await source_stream(nc, windowed, a, duplicate_window=120 * S)
        if vt(server) >= (2, 12, 0):
            if vt(server) >= (2, 14, 0):
                # A stream with sources gets no duplicate window by default from 2.14 on.
                assert created["config"].get("duplicate_window", 0) == 0
                await wait_count(nc, default, 3)
            else:
                assert created["config"]["duplicate_window"] == 120 * S
            await wait_until_copied(nc, windowed, a, 3)
            copies = await stored(nc, windowed)
            assert [m["data"] for m in copies] == [b"first", b"after"]  # "again" silently lost
        else:
            assert created["config"]["duplicate_window"] == 120 * S
            log = server_log(server)

            async def refused_twice() -> bool:
                text = log.read_text(errors="replace")
                return text.count(f"'{default}': msgid is duplicate") >= 2

            await wait_for(refused_twice, "the server to retry the duplicate")
            info = await ok(nc, f"STREAM.INFO.{default}")
            assert info["state"]["messages"] == 1  # stuck before "again"; "after" not copied
            assert info["sources"][0]["lag"] == 0  # and the lag does not show it
    finally:
        await delete(nc, default, windowed, a)


async def test_the_smallest_window_lets_a_reused_msg_id_through_before_2_12_only(
    server: NatsServer, nc: Client
) -> None:
    a, b = unique("DUPMIN"), unique("MINWIN")
    js = nc.jetstream()
    await origin_stream(nc, a, duplicate_window=S // 10)
    await js.publish(f"{a}.x", b"first", headers={"Nats-Msg-Id": "same"})
    first = time.monotonic()

    async def window_passed() -> bool:
        return time.monotonic() - first > 0.3

    await wait_for(window_passed, "the origin's 100 ms window to pass")
    await js.publish(f"{a}.x", b"again", headers={"Nats-Msg-Id": "same"})
    await js.publish(f"{a}.y", b"after")
    too_small = await api(
        nc,
        f"STREAM.CREATE.{b}",
        {"name": b, "sources": [{"name": a}], "duplicate_window": S // 100},
    )
    assert too_small["error"]["err_code"] == STREAM_INVALID_CONFIG  # at least 100 ms
    try:
        await source_stream(nc, b, a, duplicate_window=S // 10)
        if vt(server) >= (2, 12, 0):
            # Copied within 100 ms of each other: the second one is dropped.
            await wait_until_copied(nc, b, a, 3)
            assert [m["data"] for m in await stored(nc, b)] == [b"first", b"after"]
        else:
            await wait_count(nc, b, 3)
            assert [m["data"] for m in await stored(nc, b)] == [b"first", b"again", b"after"]
    finally:
        await delete(nc, b, a)


# -- catching up and switching over ---------------------------------------------------------------


async def test_catch_up_is_told_by_counts_and_the_last_copied_origin_sequence(nc: Client) -> None:
    a, b = unique("TAIL"), unique("TAILCOPY")
    js = nc.jetstream()
    await origin_stream(nc, a)
    for i in range(6):
        await js.publish(f"{a}.x", f"m{i}".encode())
    await ok(nc, f"STREAM.MSG.DELETE.{a}", {"seq": 2})
    await ok(nc, f"STREAM.MSG.DELETE.{a}", {"seq": 6})
    try:
        origin_state = await state(nc, a)
        assert (origin_state["messages"], origin_state["last_seq"]) == (4, 6)  # last_seq is a gap
        # There is no "newest message of the stream" lookup to find the last stored one.
        newest = await api(nc, f"STREAM.MSG.GET.{a}", {"last_by_subj": ">"})
        assert newest["error"]["err_code"] == 10037
        await source_stream(nc, b, a)
        await wait_count(nc, b, origin_state["messages"])
        copy_state = await state(nc, b)
        assert (copy_state["first_seq"], copy_state["last_seq"]) == (1, 4)  # renumbered, no gaps
        assert origin(await message(nc, b, copy_state["last_seq"])) == (a, 5)
        assert (await ok(nc, f"STREAM.INFO.{b}"))["sources"][0]["lag"] == 0
    finally:
        await delete(nc, b, a)


async def test_sources_can_be_dropped_and_subjects_added_in_one_update(nc: Client) -> None:
    a, b = unique("SWAP"), unique("SWAPCOPY")
    await origin_stream(nc, a)
    await nc.jetstream().publish(f"{a}.x", b"kept")
    try:
        await source_stream(nc, b, a)
        await wait_count(nc, b, 1)
        config = (await ok(nc, f"STREAM.INFO.{b}"))["config"]
        config.pop("sources")
        config["subjects"] = [f"{b}.>"]
        updated = await ok(nc, f"STREAM.UPDATE.{b}", config)
        assert "sources" not in updated["config"]
        assert updated["state"]["messages"] == 1
    finally:
        await delete(nc, b, a)


async def test_a_durable_resumes_on_the_copy_from_its_ack_floor(nc: Client) -> None:
    a, b = unique("CONS"), unique("CONSCOPY")
    js = nc.jetstream()
    await origin_stream(nc, a)
    for i in range(6):
        await js.publish(f"{a}.x", f"m{i}".encode())
    await ok(nc, f"STREAM.MSG.DELETE.{a}", {"seq": 2})
    durable = {"durable_name": "worker", "ack_policy": "explicit", "deliver_policy": "all"}
    await ok(nc, f"CONSUMER.CREATE.{a}.worker", {"stream_name": a, "config": durable})
    sub = await js.pull_subscribe_bind("worker", stream=a)
    for msg in await sub.fetch(2):  # m0 and m2 (m1 was deleted)
        await msg.ack_sync()
    await sub.unsubscribe()
    try:
        floor = (await ok(nc, f"CONSUMER.INFO.{a}.worker"))["ack_floor"]["stream_seq"]
        assert floor == 3
        await source_stream(nc, b, a)
        await wait_count(nc, b, (await state(nc, a))["messages"])
        # Way 1: how many origin messages lie after the floor, from a throw-away consumer.
        probe = {"deliver_policy": "by_start_sequence", "opt_start_seq": floor + 1}
        probe |= {"ack_policy": "none", "inactive_threshold": 5 * S, "mem_storage": True}
        pending = (await ok(nc, f"CONSUMER.CREATE.{a}", {"stream_name": a, "config": probe}))[
            "num_pending"
        ]
        by_count = (await state(nc, b))["last_seq"] - pending + 1
        # Way 2: the first copy whose origin sequence is above the floor.
        by_header = next(m["seq"] for m in await stored(nc, b) if origin(m)[1] > floor)
        assert by_count == by_header == 3
        resumed = {**durable, "deliver_policy": "by_start_sequence", "opt_start_seq": by_count}
        await ok(nc, f"CONSUMER.CREATE.{b}.worker", {"stream_name": b, "config": resumed})
        sub = await js.pull_subscribe_bind("worker", stream=b)
        assert [m.data for m in await sub.fetch(3)] == [b"m3", b"m4", b"m5"]
        await sub.unsubscribe()
    finally:
        await delete(nc, b, a)


# -- deleting and re-creating the name ------------------------------------------------------------


async def test_a_name_is_free_right_after_delete_and_publishes_in_between_find_no_stream(
    nc: Client,
) -> None:
    a = unique("GAP")
    js = nc.jetstream()
    await origin_stream(nc, a)
    await js.publish(f"{a}.x", b"before")
    try:
        assert (await ok(nc, f"STREAM.DELETE.{a}"))["success"] is True
        with pytest.raises(NoStreamResponseError):
            await js.publish(f"{a}.x", b"lost unless retried", timeout=2)
        await origin_stream(nc, a)
        ack = await js.publish(f"{a}.x", b"after")
        assert ack.seq == 1
    finally:
        await delete(nc, a)


async def test_copying_back_while_the_temporary_copy_still_sources_the_old_name_is_a_cycle(
    nc: Client,
) -> None:
    a, tmp = unique("LOOP"), unique("LOOPTMP")
    await origin_stream(nc, a)
    await nc.jetstream().publish(f"{a}.x", b"m")
    try:
        await source_stream(nc, tmp, a)
        await wait_count(nc, tmp, 1)
        await ok(nc, f"STREAM.DELETE.{a}")
        body = {"name": a, "subjects": [f"{a}.>"], "sources": [{"name": tmp}]}
        cycle = await api(nc, f"STREAM.CREATE.{a}", body)
        assert cycle["error"]["err_code"] == STREAM_INVALID_CONFIG
        assert "cycle" in cycle["error"]["description"]
        config = (await ok(nc, f"STREAM.INFO.{tmp}"))["config"]
        config.pop("sources")
        await ok(nc, f"STREAM.UPDATE.{tmp}", config)
        await ok(nc, f"STREAM.CREATE.{a}", body)
        await wait_count(nc, a, 1)
        assert origin(await message(nc, a, 1)) == (tmp, 1)
    finally:
        await delete(nc, a, tmp)
