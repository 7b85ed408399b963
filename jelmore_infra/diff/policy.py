"""An environment's policy applied to a plan: the changes and settings it refuses, as plan errors
that name the policy's line (:class:`~jelmore_infra.model.Policy`,
:mod:`jelmore_infra.topology.environments`).

- ``prevent_destroy``: a delete or replace of a listed address is an error;
- ``forbid_data_loss``: every data-loss warning of the plan is also an error, so no flag can
  accept it;
- ``min_replicas``: every declared stream, consumer group and bucket with fewer replicas is an
  error (a consumer group without its own count has its stream's).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from jelmore_infra.model import Policy, Topology
from jelmore_infra.plan import Action, Plan, PlanMessage


def policy_errors(plan: Plan, topology: Topology) -> list[PlanMessage]:
    """The plan errors ``topology.policy`` adds to ``plan`` (empty without a policy)."""
    policy = topology.policy
    if policy.empty:
        return []
    env = topology.environment or "this environment"
    return [
        *_prevent_destroy(plan, policy, env),
        *_forbid_data_loss(plan, policy, env),
        *_min_replicas(topology, policy, env),
    ]


def with_policy(plan: Plan, topology: Topology) -> Plan:
    """``plan`` with the policy's errors added and the environment recorded."""
    from dataclasses import replace

    errors = policy_errors(plan, topology)
    return replace(plan, messages=(*plan.messages, *errors), environment=topology.environment)


def _prevent_destroy(plan: Plan, policy: Policy, env: str) -> Iterable[PlanMessage]:
    destroying = {c.address: c for c in plan.changes if c.action in (Action.DELETE, Action.REPLACE)}
    for address, where in policy.prevent_destroy.items():
        change = destroying.get(address)
        if change is not None:
            verb = "deletes" if change.action is Action.DELETE else "replaces"
            yield PlanMessage(
                "error",
                "invalid",
                f"the plan {verb} {change.address}, which the policy of {env} protects "
                f"(prevent_destroy at {where})",
                change.address,
                data={"policy": "prevent_destroy", "where": str(where)},
            )


def _forbid_data_loss(plan: Plan, policy: Policy, env: str) -> Iterable[PlanMessage]:
    where = policy.forbid_data_loss
    if where is None:
        return
    for message in plan.messages:
        if message.kind == "data-loss":
            yield PlanMessage(
                "error",
                "data-loss",
                f"the policy of {env} forbids data loss (forbid_data_loss at {where}): "
                f"{message.message}",
                message.address,
                message.field,
                {"policy": "forbid_data_loss", "where": str(where)},
            )


def _min_replicas(topology: Topology, policy: Policy, env: str) -> Iterable[PlanMessage]:
    if policy.min_replicas is None:
        return
    minimum, where = policy.min_replicas
    stream_replicas: dict[str, int] = {}
    for name, stream in topology.streams.items():
        count = _count(stream.config.get("num_replicas"))
        stream_replicas[name] = count
        yield from _below(f"stream.{name}", count, minimum, where, env)
    for (parent, name), consumer in topology.consumers.items():
        own = _count(consumer.config.get("num_replicas"), default=0)
        count = own or stream_replicas.get(parent, 1)
        yield from _below(f"consumer.{parent}.{name}", count, minimum, where, env)
    for keyword, buckets in (("kv", topology.kv_buckets), ("objectstore", topology.object_stores)):
        for name, bucket in buckets.items():
            count = _count(bucket.config.get("replicas"))
            yield from _below(f"{keyword}.{name}", count, minimum, where, env)


def _count(value: object, default: int = 1) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value else default


def _below(
    address: str, count: int, minimum: int, where: object, env: str
) -> Iterable[PlanMessage]:
    if count < minimum:
        yield PlanMessage(
            "error",
            "invalid",
            f"{address} has {count} replica{'s' if count != 1 else ''}; the policy of {env} asks "
            f"for at least {minimum} (min_replicas at {where})",
            address,
            "replicas",
            {"policy": "min_replicas", "where": str(where), "replicas": count},
        )
