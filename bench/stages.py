"""Where the time of `plan` goes: a wall-clock breakdown by stage at a given resource count.

Usage: ``python bench/stages.py [--resources 5000] [--runs 3]``. Starts a local nats-server,
creates the synthetic topology with raw requests (bench/raw_create.py) — or uses ``--url`` and
``--topology`` of a server that already holds it (bench/run.py does, with ``--json``) — then
times in-process, without a profiler's overhead: imports, reading YAML into located nodes
(``merge_files``; for comparison, the same files read by the YAML parser, which plain block YAML
no longer needs, are timed apart), conversion to drafts, the semantic checks (and the stream
subject-overlap check within them), building the model, connecting, the live read, the diff,
and rendering; then the load and the live read overlapped the way ``plan`` runs them (the read
in a child process, ``live/ahead.py``), with the time left waiting for the child once the load
is done. Prints the median of ``--runs`` runs per stage. ``--apply`` breaks down an apply from
empty instead, each run on a fresh server: loading the topology, connecting and taking the apply
lock, the live read and diff, rendering the plan as an unattended apply does (creates in one line
each), executing the steps (each create reply is compared with the plan as it arrives), what is
left of the convergence check after the last step, writing the audit record, and releasing the
lock. `make bench` adds these breakdowns to BENCHMARKS.md; they are not figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

T0 = time.perf_counter()
from datetime import UTC, datetime  # noqa: E402

from jelmore_infra.connection import ConnectionSettings  # noqa: E402
from jelmore_infra.diff import build_plan  # noqa: E402
from jelmore_infra.live.jsapi import JetStreamAPI  # noqa: E402
from jelmore_infra.live.read import read_live  # noqa: E402
from jelmore_infra.render.human import render_plan_text  # noqa: E402
from jelmore_infra.topology import load as topo_load  # noqa: E402
from jelmore_infra.topology import validate as topo_validate  # noqa: E402
from jelmore_infra.topology.build import build_topology  # noqa: E402

IMPORTS = time.perf_counter() - T0


from bench import harness as H  # noqa: E402
from bench import topogen  # noqa: E402
from bench.run import BENCH, PY, plan_configs, run_timed  # noqa: E402
from jelmore_infra.live.ahead import ReadAhead  # noqa: E402
from tests.support.natsserver import NatsServer  # noqa: E402

ORDER = (
    "YAML -> located nodes (merge_files)",
    "(not a stage: the same files read by the YAML parser instead, parse_yaml)",
    "convert_topology",
    "check_semantics",
    "  of which stream_overlaps",
    "build_topology",
    "connect + live read",
    "  of which live read (read_live)",
    "diff (build_plan)",
    "render (human)",
    "load + live read overlapped, as `plan` runs them (live/ahead.py)",
    "  of which waiting for the child's read after the load",
)


def timed(acc: dict[str, list[float]], name: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    value = fn()
    acc.setdefault(name, []).append(time.perf_counter() - start)
    return value


def overlap_timer(acc: dict[str, list[float]]) -> None:
    """Time the stream subject-overlap check inside check_semantics, if it is a method."""
    for obj in vars(topo_validate).values():
        method = getattr(obj, "stream_overlaps", None) if isinstance(obj, type) else None
        if method is None:
            continue

        def wrapped(self: Any, _orig: Any = method) -> None:
            start = time.perf_counter()
            _orig(self)
            acc.setdefault("  of which stream_overlaps", []).append(time.perf_counter() - start)

        obj.stream_overlaps = wrapped


def one_run(directory: Path, url: str, acc: dict[str, list[float]]) -> None:
    sources, _ = topo_load.read_sources(directory)
    diags: list[Any] = []
    timed(
        acc,
        "(not a stage: the same files read by the YAML parser instead, parse_yaml)",
        lambda: [topo_load.parse_yaml(name, text, []) for name, text in sources],
    )
    raw = timed(
        acc,
        "YAML -> located nodes (merge_files)",
        lambda: topo_load.merge_files(sources, diags),
    )
    streams, groups = timed(
        acc, "convert_topology", lambda: topo_validate.convert_topology(raw, diags)
    )
    timed(acc, "check_semantics", lambda: topo_validate.check_semantics(streams, groups))
    topology = timed(acc, "build_topology", lambda: build_topology(streams, groups))

    async def live_part() -> Any:
        api = await JetStreamAPI.connect(ConnectionSettings(url=url))
        start = time.perf_counter()
        live = await read_live(api)
        acc.setdefault("  of which live read (read_live)", []).append(time.perf_counter() - start)
        await api.close()
        return live

    live = timed(acc, "connect + live read", lambda: asyncio.run(live_part()))
    plan = timed(
        acc, "diff (build_plan)", lambda: build_plan(topology, live, now=datetime.now(UTC))
    )
    timed(acc, "render (human)", lambda: render_plan_text(plan))

    def overlapped() -> Any:
        with ReadAhead(ConnectionSettings(url=url), None) as reader:
            topo_load.load_topology(directory)
            start = time.perf_counter()
            live = reader.result()
        wait = time.perf_counter() - start
        acc.setdefault("  of which waiting for the child's read after the load", []).append(wait)
        return live

    timed(acc, "load + live read overlapped, as `plan` runs them (live/ahead.py)", overlapped)


def mirror_cli_gc() -> None:
    """Run the stages under the same garbage-collector setting as the CLI's commands."""
    try:
        from jelmore_infra.cli.common import short_lived
    except ImportError:
        return
    short_lived()


def breakdown(directory: Path, url: str, runs: int) -> dict[str, float]:
    """Median seconds per stage over ``runs`` in-process plans (stage name → seconds)."""
    acc: dict[str, list[float]] = {}
    overlap_timer(acc)
    mirror_cli_gc()
    for _ in range(runs):
        one_run(directory, url, acc)
    names = sorted(acc, key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER))
    return {"imports (once per process)": IMPORTS, **{n: H.median(acc[n]) for n in names}}


APPLY_ORDER = (
    "load topology (YAML, checks, model)",
    "connect + take the apply lock",
    "live read + diff (make_plan)",
    "render (human, brief creates)",
    "execute the steps (each reply compared with the plan as it arrives)",
    "convergence check left after the last step",
    "audit record (its plan checksum computed during the steps)",
    "release the lock + close",
)


def apply_breakdown(directory: Path, runs: int) -> dict[str, float]:
    """Median seconds per stage of an apply from empty, each run on a fresh server (in-process,
    the same calls as ``jelmore-infra apply --auto-approve``)."""
    from jelmore_infra import apply as A
    from jelmore_infra.audit import ApplyObserver
    from jelmore_infra.live.audit import record_apply
    from jelmore_infra.live.lock import ApplyLock
    from jelmore_infra.workflow import ChecksumAhead, make_plan

    acc: dict[str, list[float]] = {}
    original = A.check_convergence

    async def convergence(*args: Any, **kwargs: Any) -> list[str]:
        start = time.perf_counter()
        problems = await original(*args, **kwargs)
        acc.setdefault(APPLY_ORDER[5], []).append(time.perf_counter() - start)
        return problems

    A.check_convergence = convergence  # type: ignore[assignment]
    mirror_cli_gc()
    try:
        for _ in range(runs):
            with NatsServer() as srv:
                topology = timed(acc, APPLY_ORDER[0], lambda: topo_load.load_topology(directory))

                async def body(url: str = srv.url, topology: Any = topology) -> None:
                    start = time.perf_counter()
                    started = datetime.now(UTC)
                    api = await JetStreamAPI.connect(ConnectionSettings(url=url))
                    lock = ApplyLock(api)
                    await lock.acquire(timeout=0)
                    acc.setdefault(APPLY_ORDER[1], []).append(time.perf_counter() - start)
                    start = time.perf_counter()
                    plan = await make_plan(api, topology)
                    acc.setdefault(APPLY_ORDER[2], []).append(time.perf_counter() - start)
                    timed(acc, APPLY_ORDER[3], lambda: render_plan_text(plan, brief_creates=True))
                    ahead = ChecksumAhead()  # as workflow.run_apply does, once the plan is shown
                    observer = ApplyObserver(checksum=ahead.checksum)
                    observer.plan = plan
                    ahead.start(plan)
                    start = time.perf_counter()
                    result = await A.apply_plan(api, plan, lease=lock)
                    whole = time.perf_counter() - start
                    acc.setdefault(APPLY_ORDER[4], []).append(whole - acc[APPLY_ORDER[5]][-1])
                    if not result.ok:
                        raise SystemExit(f"apply failed: {result.convergence_errors[:3]}")
                    observer.result = result
                    start = time.perf_counter()
                    why = await record_apply(api, observer, None, started)
                    if why is not None:
                        raise SystemExit(f"audit record failed: {why}")
                    acc.setdefault(APPLY_ORDER[6], []).append(time.perf_counter() - start)
                    start = time.perf_counter()
                    await lock.release()
                    await api.close()
                    acc.setdefault(APPLY_ORDER[7], []).append(time.perf_counter() - start)

                asyncio.run(body())
    finally:
        A.check_convergence = original  # type: ignore[assignment]
    return {"imports (once per process)": IMPORTS, **{n: H.median(acc[n]) for n in APPLY_ORDER}}


def main() -> None:
    parser = argparse.ArgumentParser(description="stage breakdown of plan (or of apply)")
    parser.add_argument("--resources", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--url", help="use this server (already holding --topology)")
    parser.add_argument("--topology", help="topology directory on the --url server")
    parser.add_argument("--json", action="store_true", help="print {stage: seconds} as JSON")
    parser.add_argument(
        "--apply",
        action="store_true",
        help="break down an apply from empty instead (fresh servers; --topology or --resources)",
    )
    args = parser.parse_args()
    if args.apply:
        if args.topology:
            directory = Path(args.topology)
        else:
            tmp = Path(tempfile.mkdtemp(prefix="jelmore-stages-"))
            directory = topogen.write_topology(tmp / "topology", args.resources)
        stages = apply_breakdown(directory, args.runs)
        if args.json:
            print(json.dumps(stages))
            return
        print(f"apply from empty, median of {args.runs} runs")
        for name, seconds in stages.items():
            print(f"{name:50s} {seconds:7.3f} s")
        return
    if args.url and args.topology:
        stages = breakdown(Path(args.topology), args.url, args.runs)
        whole = None
    else:
        tmp = Path(tempfile.mkdtemp(prefix="jelmore-stages-"))
        directory = topogen.write_topology(tmp / "topology", args.resources)
        with NatsServer() as srv:
            cfg = tmp / "configs.json"
            cfg.write_text(json.dumps(plan_configs(srv.url, directory)))
            run_timed([PY, str(BENCH / "raw_create.py"), srv.url, str(cfg)])
            stages = breakdown(directory, srv.url, args.runs)
            cmd = [PY, "-m", "jelmore_infra", "plan", "--topology", str(directory), "-s", srv.url]
            whole = H.median([run_timed(cmd)[0] for _ in range(args.runs)])
    if args.json:
        print(json.dumps(stages))
        return
    print(f"plan, median of {args.runs} runs")
    if whole is not None:
        print(f"{'whole process (python -m jelmore_infra plan)':50s} {whole:7.3f} s")
    for name, seconds in stages.items():
        print(f"{name:50s} {seconds:7.3f} s")


if __name__ == "__main__":
    main()
