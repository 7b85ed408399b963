"""Convergence after ``apply``: each change is compared with the config its create or update
reply carries as soon as that reply (and its parent's) is in, while the server still works on
other steps; the result is the same as comparing everything at the end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from jelmore_infra.apply import ApplyResult, apply_plan, check_convergence
from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.live.jsapi import JetStreamAPI
from jelmore_infra.plan import Plan
from jelmore_infra.topology import load_topology
from jelmore_infra.workflow import make_plan
from tests.support.cli import copy_topology
from tests.support.natsserver import NatsServer


class ReplySaysMaxMsgs5:
    """The real API, except that the create reply of stream JELMORE says ``max_msgs: 5`` (as
    if the server had not applied the planned value)."""

    def __init__(self, api: JetStreamAPI) -> None:
        self._api = api
        self.replies: dict[str, dict[str, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    async def create_stream(self, config: dict[str, Any]) -> dict[str, Any]:
        reply = await self._api.create_stream(config)
        if config["name"] == "JELMORE":
            reply = {**reply, "config": {**reply["config"], "max_msgs": 5}}
        self.replies[f"stream.{config['name']}"] = reply["config"]
        return reply

    async def create_consumer(
        self, stream: str, config: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        reply = await self._api.create_consumer(stream, config, **kw)
        self.replies[f"consumer.{stream}.{config['durable_name']}"] = reply["config"]
        return reply


def test_apply_names_each_field_a_create_reply_shows_the_server_did_not_apply(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topology = load_topology(copy_topology(tmp_path))

    async def run() -> tuple[Plan, ApplyResult, list[str]]:
        api = await JetStreamAPI.connect(ConnectionSettings(url=nats_server.url))
        try:
            plan = await make_plan(api, topology)
            altered = ReplySaysMaxMsgs5(api)
            result = await apply_plan(cast(JetStreamAPI, altered), plan)
            at_the_end = await check_convergence(api, plan, altered.replies)
            return plan, result, at_the_end
        finally:
            await api.close()

    plan, result, at_the_end = asyncio.run(run())
    assert [s.status for s in result.steps] == ["done"] * len(plan.changes)
    assert len(result.convergence_errors) == 1, result.convergence_errors
    assert result.convergence_errors[0].startswith("server did not apply stream.JELMORE max_msgs")
    assert result.convergence_errors[0].endswith("server has 5")
    assert result.convergence_errors == at_the_end


class CountsInFlight:
    """The real API, counting the create requests under way and noting the order they start."""

    def __init__(self, api: JetStreamAPI) -> None:
        self._api = api
        self.in_flight = 0
        self.most = 0
        self.started: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    async def _counted(self, address: str, call: Any) -> dict[str, Any]:
        self.started.append(address)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.01)  # long enough for every free worker to start its own
            return cast(dict[str, Any], await call)
        finally:
            self.in_flight -= 1

    async def create_stream(self, config: dict[str, Any]) -> dict[str, Any]:
        return await self._counted(f"stream.{config['name']}", self._api.create_stream(config))

    async def create_consumer(
        self, stream: str, config: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        address = f"consumer.{stream}.{config['durable_name']}"
        return await self._counted(address, self._api.create_consumer(stream, config, **kw))


def test_apply_keeps_at_most_its_concurrency_of_steps_under_way_and_starts_them_in_plan_order(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topology = load_topology(copy_topology(tmp_path))

    async def run() -> tuple[Plan, ApplyResult, CountsInFlight]:
        api = await JetStreamAPI.connect(ConnectionSettings(url=nats_server.url))
        try:
            plan = await make_plan(api, topology)
            counting = CountsInFlight(api)
            result = await apply_plan(cast(JetStreamAPI, counting), plan, concurrency=2)
            return plan, result, counting
        finally:
            await api.close()

    plan, result, counting = asyncio.run(run())
    assert [s.status for s in result.steps] == ["done"] * len(plan.changes)
    assert result.convergence_errors == []
    assert len(counting.started) > 2
    assert counting.most == 2
    streams_and_consumers = [
        c.address for c in plan.changes if c.address.startswith(("stream.", "consumer."))
    ]
    assert counting.started == streams_and_consumers
