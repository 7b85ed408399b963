"""Finding the provisioned topology on the server: the event stream, the consumer groups, their
dead-letter streams and the advisory stream — never from constants in the code.

* the event stream is the stream capturing ``<prefix>.session.>``;
* a consumer group is a durable consumer on it (its policy is its consumer info, see ``retry``);
* the dead-letter streams are named in the groups' metadata (fallback: the stream capturing
  ``<prefix>.dlq.>``);
* the advisory stream is the stream capturing
  ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<event stream>.*``; its router consumer is the
  durable ``dlq_router``.
"""

from __future__ import annotations

from jelmore_infra.errors import JelmoreError
from jelmore_infra.runtime.bus import Bus
from jelmore_infra.runtime.retry import GroupPolicy, policy_from_consumer_info

ROUTER_CONSUMER = "dlq_router"


class TopologyMissing(JelmoreError):
    """A stream or consumer group the runtime needs is not on the server."""


def max_deliveries_subject(stream: str, consumer: str = "*") -> str:
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"


async def stream_for(bus: Bus, subject: str, *, what: str = "") -> str:
    """The stream capturing ``subject``; ``TopologyMissing`` when none does."""
    names = sorted(await bus.stream_names(subject))
    if not names:
        label = f"{what} " if what else ""
        raise TopologyMissing(
            f"no {label}stream captures {subject} on {bus.settings.safe_url()}: "
            "run `jelmore-infra apply`"
        )
    return names[0]


async def main_stream(bus: Bus) -> str:
    return await stream_for(bus, bus.settings.main_subjects(), what="event")


async def group_policy(bus: Bus, group: str, stream: str | None = None) -> GroupPolicy:
    """The policy of consumer group ``group``; a clear error when it does not exist."""
    name = stream or await main_stream(bus)
    info = await bus.consumer_info(name, group)
    if info is None:
        raise TopologyMissing(
            f"consumer group {group} does not exist on stream {name}: run `jelmore-infra apply`"
        )
    config = info.get("config") or {}
    if config.get("deliver_subject"):
        raise TopologyMissing(
            f"consumer {group} on stream {name} is a push consumer, not a consumer group: "
            "run `jelmore-infra apply`"
        )
    return policy_from_consumer_info(info)


async def group_policies(bus: Bus, stream: str) -> list[GroupPolicy]:
    """Every consumer group (durable pull consumer with jelmore metadata) on ``stream``."""
    groups: list[GroupPolicy] = []
    for info in await bus.consumer_infos(stream):
        config = info.get("config") or {}
        if not config.get("durable_name") or config.get("deliver_subject"):
            continue
        policy = policy_from_consumer_info(info)
        if policy.managed:
            groups.append(policy)
    return sorted(groups, key=lambda p: p.consumer)


async def dlq_streams(bus: Bus, stream: str) -> list[str]:
    names = {p.dead_letter_stream for p in await group_policies(bus, stream)}
    found = sorted(n for n in names if n)
    if found:
        return found
    return sorted(await bus.stream_names(bus.settings.dlq_subjects()))


async def advisory_stream(bus: Bus, stream: str) -> str | None:
    names = sorted(await bus.stream_names(max_deliveries_subject(stream)))
    return names[0] if names else None
