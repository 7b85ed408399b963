"""Provision the Jelmore topology on a test server with raw ``$JS.API`` requests (until
``jelmore-infra apply`` exists), for the runtime tests.

Creates exactly what topology/*.yaml declares — streams JELMORE (``jelmore.session.>``) and
JELMORE_DLQ (``jelmore.dlq.>``), the four consumer groups as durable pull consumers (ack explicit,
ack_wait 30s, max_deliver 3, max_ack_pending 1000, metadata retry-delays "2s,4s,8s", dead-letter
stream/subject, managed-by) — plus the dead-letter safety net the runtime needs:

* stream ``JELMORE_ADVISORIES`` on ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.JELMORE.*``
  (file storage, limits retention, max_age 7d);
* its durable pull consumer ``dlq_router`` (ack explicit, ack_wait 30s, max_deliver unlimited,
  max_ack_pending 1000).

``add_group`` adds a test consumer group with scaled-down delays / ack wait, read by the runtime
from the server like any other group.

The event catalogue (KV bucket ``jelmore-catalogue``) gets the repository's
``topology/events.yaml`` event types, as apply stores them; ``put_event`` stores another.

``replicas=3`` (on a 3-node cluster) makes every stream, the catalogue's included, R3; the
consumers follow their stream's replication.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nats

from jelmore_infra.units import parse_duration
from tests.support.waiting import wait_for

MANAGED = {"jelmore.managed-by": "jelmore-infra"}
MAIN = "JELMORE"
DLQ = "JELMORE_DLQ"
ADVISORIES = "JELMORE_ADVISORIES"
ROUTER = "dlq_router"

GROUPS: dict[str, list[str]] = {
    "session_handlers": ["jelmore.session.>"],
    "file_watchers": ["jelmore.session.directory_changed", "jelmore.session.file_modified"],
    "git_monitors": ["jelmore.session.git_activity"],
    "system_monitors": ["jelmore.session.status", "jelmore.session.failed"],
}


def ns(text: str) -> int:
    return parse_duration(text)


def stream_configs(replicas: int = 1) -> list[dict[str, Any]]:
    configs = [
        {
            "name": MAIN,
            "description": "Jelmore session events",
            "subjects": ["jelmore.session.>"],
            "retention": "limits",
            "storage": "file",
            "max_age": ns("7d"),
            "max_msgs": 100000,
            "max_bytes": 10_000_000_000,
            "discard": "old",
            "duplicate_window": ns("60s"),
            "num_replicas": 1,
            "metadata": dict(MANAGED),
        },
        {
            "name": DLQ,
            "description": "Jelmore dead-letter queue",
            "subjects": ["jelmore.dlq.>"],
            "retention": "limits",
            "storage": "file",
            "max_age": ns("30d"),
            "max_msgs": 10000,
            "max_bytes": 1_000_000_000,
            "discard": "old",
            "num_replicas": 1,
            "metadata": dict(MANAGED),
        },
        {
            "name": ADVISORIES,
            "description": "Max-deliveries advisories of JELMORE consumers (DLQ safety net)",
            "subjects": [f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{MAIN}.*"],
            "retention": "limits",
            "storage": "file",
            "max_age": ns("7d"),
            "discard": "old",
            "num_replicas": 1,
            "metadata": dict(MANAGED),
        },
    ]
    return [{**config, "num_replicas": replicas} for config in configs]


def group_config(
    name: str,
    filter_subjects: Sequence[str],
    *,
    retry_delays: str = "2s,4s,8s",
    ack_wait: str = "30s",
    max_deliver: int = 3,
    dead_letter_subject: str | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "durable_name": name,
        "description": f"consumer group {name}",
        "deliver_policy": "all",
        "ack_policy": "explicit",
        "ack_wait": ns(ack_wait),
        "max_deliver": max_deliver,
        "max_ack_pending": 1000,
        "replay_policy": "instant",
        "metadata": {
            **MANAGED,
            "jelmore.retry-delays": retry_delays,
            "jelmore.dead-letter-stream": DLQ,
            "jelmore.dead-letter-subject": dead_letter_subject or f"jelmore.dlq.{name}",
        },
    }
    if len(filter_subjects) == 1:
        config["filter_subject"] = filter_subjects[0]
    else:
        config["filter_subjects"] = list(filter_subjects)
    return config


def router_config() -> dict[str, Any]:
    return {
        "durable_name": ROUTER,
        "description": "routes max-deliveries advisories to the dead-letter queue",
        "deliver_policy": "all",
        "ack_policy": "explicit",
        "ack_wait": ns("30s"),
        "max_deliver": -1,
        "max_ack_pending": 1000,
        "metadata": dict(MANAGED),
    }


async def _api(nc: Any, subject: str, body: dict[str, Any] | None) -> dict[str, Any]:
    msg = await nc.request(f"$JS.API.{subject}", json.dumps(body or {}).encode(), timeout=5)
    answer: dict[str, Any] = json.loads(msg.data)
    if answer.get("error"):
        raise RuntimeError(f"{subject}: {answer['error']}")
    return answer


#: "no suitable peers for placement" and "insufficient resources": a cluster whose leader has not
#: yet heard every peer's statistics cannot place a replicated stream for a moment
CANNOT_PLACE_YET = (10005, 10023)


async def create_stream(nc: Any, config: dict[str, Any]) -> None:
    """``STREAM.CREATE``, repeated while a cluster cannot place the replicas yet."""

    async def attempt() -> bool:
        subject = f"$JS.API.STREAM.CREATE.{config['name']}"
        msg = await nc.request(subject, json.dumps(config).encode(), timeout=10)
        error = json.loads(msg.data).get("error")
        if error and error.get("err_code") in CANNOT_PLACE_YET:
            return False
        if error:
            raise RuntimeError(f"STREAM.CREATE.{config['name']}: {error}")
        return True

    await wait_for(attempt, f"a cluster able to place stream {config['name']}", 60, 0.2)


def repo_events() -> dict[str, Any]:
    """The event types of the repository's ``topology/events.yaml`` (loaded with the topology)."""
    from jelmore_infra.topology import load_topology

    return dict(load_topology(Path(__file__).resolve().parents[2] / "topology").events)


async def put_event(
    nc: Any,
    event_type: str,
    config: dict[str, Any],
    *,
    version: int = 1,
    stream: str = MAIN,
    replicas: int = 1,
) -> None:
    """Store one event type in the catalogue, as apply does (the bucket created when missing)."""
    from jelmore_infra.catalogue.entry import (
        canonical_entry,
        catalogue_stream_config,
        encode_entry,
        key_subject,
    )

    config_of_stream = catalogue_stream_config(replicas)
    info = await nc.request(f"$JS.API.STREAM.INFO.{config_of_stream['name']}", b"", timeout=5)
    if json.loads(info.data).get("error"):
        await create_stream(nc, config_of_stream)
    entry = canonical_entry(event_type, config, stream, version)
    ack = await _publish_when_led(nc, key_subject(event_type), encode_entry(entry))
    assert not json.loads(ack.data).get("error"), ack.data


async def _publish_when_led(nc: Any, subject: str, data: bytes) -> Any:
    """A JetStream publish, repeated while nobody answers: a replicated stream created a moment
    ago may not have elected its leader yet."""
    from nats.errors import NoRespondersError

    async def attempt() -> Any:
        try:
            return await nc.request(subject, data, timeout=5)
        except NoRespondersError:
            return None

    return await wait_for(attempt, f"a leader of the stream storing {subject}")


async def provision_catalogue(nc: Any, *, replicas: int = 1) -> None:
    """The repository's event types, version 1 each."""
    for event_type, spec in repo_events().items():
        await put_event(nc, event_type, spec.config, stream=spec.stream or MAIN, replicas=replicas)


async def catalogue_only_async(url: str) -> None:
    """The event catalogue and nothing else: no stream captures the events."""
    nc = await nats.connect(url)
    try:
        await provision_catalogue(nc)
    finally:
        await nc.close()


async def provision_async(
    url: str,
    *,
    retry_delays: str = "2s,4s,8s",
    ack_wait: str = "30s",
    max_deliver: int = 3,
    advisories: bool = True,
    groups: bool = True,
    catalogue: bool = True,
    replicas: int = 1,
) -> None:
    nc = await nats.connect(url)
    try:
        if catalogue:
            await provision_catalogue(nc, replicas=replicas)
        for config in stream_configs(replicas):
            if config["name"] == ADVISORIES and not advisories:
                continue
            await create_stream(nc, config)
        if groups:
            for name, filters in GROUPS.items():
                config = group_config(
                    name,
                    filters,
                    retry_delays=retry_delays,
                    ack_wait=ack_wait,
                    max_deliver=max_deliver,
                )
                await _api(
                    nc, f"CONSUMER.CREATE.{MAIN}.{name}", {"stream_name": MAIN, "config": config}
                )
        if advisories:
            await _api(
                nc,
                f"CONSUMER.CREATE.{ADVISORIES}.{ROUTER}",
                {"stream_name": ADVISORIES, "config": router_config()},
            )
    finally:
        await nc.close()


async def add_group_async(
    url: str,
    name: str,
    filter_subjects: Sequence[str],
    *,
    retry_delays: str = "200ms,400ms,800ms",
    ack_wait: str = "2s",
    max_deliver: int = 3,
    deliver_policy: str = "new",
) -> None:
    nc = await nats.connect(url)
    try:
        config = group_config(
            name,
            filter_subjects,
            retry_delays=retry_delays,
            ack_wait=ack_wait,
            max_deliver=max_deliver,
        )
        config["deliver_policy"] = deliver_policy
        await _api(nc, f"CONSUMER.CREATE.{MAIN}.{name}", {"stream_name": MAIN, "config": config})
    finally:
        await nc.close()


async def delete_async(url: str, kind: str, *names: str) -> None:
    """``delete_async(url, "STREAM", "JELMORE")`` or ``("CONSUMER", "JELMORE", "g")``."""
    nc = await nats.connect(url)
    try:
        msg = await nc.request(f"$JS.API.{kind}.DELETE.{'.'.join(names)}", b"", timeout=5)
        json.loads(msg.data)
    finally:
        await nc.close()


async def purge_async(url: str, *streams: str) -> None:
    nc = await nats.connect(url)
    try:
        for stream in streams:
            await nc.request(f"$JS.API.STREAM.PURGE.{stream}", b"{}", timeout=5)
    finally:
        await nc.close()


def provision(url: str, **kwargs: Any) -> None:
    asyncio.run(provision_async(url, **kwargs))


def add_group(url: str, name: str, filter_subjects: Sequence[str], **kwargs: Any) -> None:
    asyncio.run(add_group_async(url, name, filter_subjects, **kwargs))


# -- helpers shared by the runtime tests -----------------------------------------------------------


async def wait_until(predicate: Any, limit: float = 20.0, interval: float = 0.05) -> None:
    """Poll ``predicate`` (sync or async, returning truthy) until it holds; fail after ``limit`` s."""
    await wait_for(predicate, within=limit, interval=interval)


async def stream_messages(url: str, stream: str) -> list[dict[str, Any]]:
    """Every message of ``stream`` as ``{"seq", "subject", "headers", "data"}`` (raw read)."""
    import base64

    nc = await nats.connect(url)
    try:
        info = await _api(nc, f"STREAM.INFO.{stream}", None)
        state = info["state"]
        out: list[dict[str, Any]] = []
        if not state.get("messages"):
            return out
        for seq in range(state["first_seq"], state["last_seq"] + 1):
            msg = await nc.request(
                f"$JS.API.STREAM.MSG.GET.{stream}", json.dumps({"seq": seq}).encode(), timeout=5
            )
            answer = json.loads(msg.data)
            if answer.get("error"):
                continue
            raw = answer["message"]
            headers: dict[str, str] = {}
            if raw.get("hdrs"):
                for line in base64.b64decode(raw["hdrs"]).decode().split("\r\n")[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip()] = v.strip()
            out.append(
                {
                    "seq": raw["seq"],
                    "subject": raw["subject"],
                    "headers": headers,
                    "data": base64.b64decode(raw.get("data") or b""),
                }
            )
        return out
    finally:
        await nc.close()


async def consumer_state(url: str, stream: str, name: str) -> dict[str, Any] | None:
    nc = await nats.connect(url)
    try:
        msg = await nc.request(f"$JS.API.CONSUMER.INFO.{stream}.{name}", b"", timeout=5)
        answer: dict[str, Any] = json.loads(msg.data)
        return None if answer.get("error") else answer
    finally:
        await nc.close()


async def consumer_names(url: str, stream: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        answer = await _api(nc, f"CONSUMER.NAMES.{stream}", {})
        return list(answer.get("consumers") or [])
    finally:
        await nc.close()
