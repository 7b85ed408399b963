"""Golden plan cases: each YAML file under ``cases/diff/`` is a desired topology, a live server
state (built from real server responses) and the plan expected for it.

Case format (see any case file):

- ``server``: ``version`` (and optionally ``cluster``); ``now`` (RFC 3339, default 2026-06-01).
- ``desired.streams`` / ``desired.consumers`` (``STREAM.NAME`` keys): wire-form configs with only what
  the user set; ``name``/``durable_name`` and the ``jelmore.managed-by`` marker are added.
- ``live.streams`` / ``live.consumers``: ``response`` (a captured config from
  ``_server_responses.yaml`` for the server's release line) or ``config`` (a full config), plus
  ``overrides`` (``null`` removes a key) and ``state``; ``live.unavailable``: address → reason.
- ``targets``: addresses.
- ``expect``: ``changes`` (``[address, action]`` in apply order), ``fields`` (address → paths in
  order, ``!`` suffix = forces replace), ``messages`` (``"severity kind address [field]"``, any
  order, exact set), ``reasons`` (address → replace reasons in order), ``after`` (address → values
  the config apply sends must hold), ``text`` (substrings that must appear in the message of a given
  ``"severity kind address [field]"``), ``data`` (same key → expected numbers), ``unmanaged``,
  ``fingerprints`` (addresses that must be recorded; ``null`` = absent).
"""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from jelmore_infra.diff import build_plan
from jelmore_infra.model import (
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    ConsumerSpec,
    LiveConsumer,
    LiveState,
    LiveStream,
    ServerIdentity,
    StreamSpec,
    Topology,
)
from jelmore_infra.plan import Plan, PlanMessage

CASES = Path(__file__).parent / "cases" / "diff"
RESPONSES: dict[str, Any] = yaml.safe_load((CASES / "_server_responses.yaml").read_text())
CASE_FILES = sorted(p for p in CASES.glob("*.yaml") if not p.name.startswith("_"))


def _line(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _with_marker(config: dict[str, Any]) -> dict[str, Any]:
    meta = dict(config.get("metadata") or {})
    meta.setdefault(MANAGED_BY_KEY, MANAGED_BY_VALUE)
    return {**config, "metadata": meta}


def _live_config(entry: dict[str, Any], kind: str, version: str) -> dict[str, Any]:
    if "config" in entry:
        config = copy.deepcopy(entry["config"])
    else:
        config = copy.deepcopy(RESPONSES[_line(version)][kind][entry["response"]])
    for key, value in (entry.get("overrides") or {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return dict(config)


def load_case(path: Path) -> tuple[Topology, LiveState, dict[str, Any], list[str], datetime]:
    case = yaml.safe_load(path.read_text())
    server = case["server"]
    version = str(server["version"])
    identity = ServerIdentity(
        server_name="golden",
        server_id="NGOLDEN",
        version=version,
        api_level=int(server.get("api_level", 0)),
        cluster=server.get("cluster"),
    )
    desired = case.get("desired") or {}
    streams = {
        name: StreamSpec(name, _with_marker({"name": name, **(cfg or {})}))
        for name, cfg in (desired.get("streams") or {}).items()
    }
    consumers = {}
    for key, cfg in (desired.get("consumers") or {}).items():
        stream, name = key.split(".")
        consumers[(stream, name)] = ConsumerSpec(
            stream, name, _with_marker({"durable_name": name, **(cfg or {})})
        )
    live = case.get("live") or {}
    live_streams = {
        name: LiveStream(
            name, {**_live_config(e, "streams", version), "name": name}, dict(e.get("state") or {})
        )
        for name, e in (live.get("streams") or {}).items()
    }
    live_consumers = {}
    for key, e in (live.get("consumers") or {}).items():
        stream, name = key.split(".")
        config = {**_live_config(e, "consumers", version), "name": name}
        if "durable_name" in config:
            config["durable_name"] = name
        live_consumers[(stream, name)] = LiveConsumer(
            stream, name, config, dict(e.get("state") or {})
        )
    state = LiveState(
        server=identity,
        streams=live_streams,
        consumers=live_consumers,
        unavailable=dict(live.get("unavailable") or {}),
    )
    now = datetime.fromisoformat(
        str(case.get("now", "2026-06-01T00:00:00+00:00")).replace("Z", "+00:00")
    )
    return Topology(streams, consumers), state, case["expect"], list(case.get("targets") or ()), now


def _key(m: PlanMessage) -> str:
    return " ".join(p for p in (m.severity, m.kind, m.address or "-", m.field) if p)


def check_plan(plan: Plan, expect: dict[str, Any]) -> None:
    got_changes = [[c.address, c.action.value] for c in plan.changes]
    assert got_changes == [list(c) for c in expect.get("changes", [])], "changes"
    for address, paths in (expect.get("fields") or {}).items():
        change = next(c for c in plan.changes if c.address == address)
        got = [f.path + ("!" if f.forces_replace else "") for f in change.fields]
        assert got == paths, f"fields of {address}"
    for address, values in (expect.get("after") or {}).items():
        change = next(c for c in plan.changes if c.address == address)
        assert change.after is not None
        for key, value in values.items():
            assert change.after.get(key) == value, f"after.{key} of {address}"
    for address, reasons in (expect.get("reasons") or {}).items():
        change = next(c for c in plan.changes if c.address == address)
        assert list(change.replace_reasons) == reasons, f"replace reasons of {address}"
    got_messages = sorted(_key(m) for m in plan.messages)
    assert got_messages == sorted(expect.get("messages", [])), "messages"
    by_key = {_key(m): m for m in plan.messages}
    for key, parts in (expect.get("text") or {}).items():
        for part in [parts] if isinstance(parts, str) else parts:
            assert part in by_key[key].message, f"{key}: {by_key[key].message!r}"
    for key, data in (expect.get("data") or {}).items():
        for name, value in data.items():
            assert by_key[key].data.get(name) == value, f"{key} data {name}"
    assert list(plan.unmanaged) == expect.get("unmanaged", []), "unmanaged"
    for address, fp in (expect.get("fingerprints") or {}).items():
        assert address in plan.fingerprints, f"fingerprint of {address}"
        if fp is None:
            assert plan.fingerprints[address] is None
        else:
            assert plan.fingerprints[address] is not None
    for change in plan.changes:
        for f in change.fields:
            assert not f.path.startswith("metadata._nats."), "server metadata shown"
        assert change.fingerprint == plan.fingerprints.get(change.address)


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_golden_plan(path: Path) -> None:
    desired, live, expect, targets, now = load_case(path)
    plan = build_plan(desired, live, targets=targets, now=now)
    check_plan(plan, expect)
    assert Plan.from_dict(plan.to_dict()).to_dict() == plan.to_dict()


def test_every_golden_case_file_is_found() -> None:
    assert len(CASE_FILES) >= 40
