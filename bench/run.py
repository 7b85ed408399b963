"""`make bench`: every benchmark of issue 6 against local nats-server processes started here.

Runs each figure as the median of several runs after a warm-up, with its baseline interleaved
(ours, baseline, ours, baseline, …) in the same invocation against the same kind of server; prints
one table (figure, ours, baseline, ratio, target, met?), writes ``bench/results/<UTC time>.json``
and ``bench/results/latest.json``, and regenerates ``BENCHMARKS.md`` and
``bench/plan_scaling.svg``. Whole-command figures time the whole process (Python start-up
included). Nothing here is a test; no test asserts a time.

Options: ``--quick`` (fewer runs, no 20,000-resource point: for trying the harness out),
``--skip FIGURE`` (repeatable: help, validate, plan, scaling, apply, runtime).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness as H  # noqa: E402
from bench import topogen  # noqa: E402
from tests.support.natsserver import NatsServer  # noqa: E402

BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
CHART = BENCH / "plan_scaling.svg"
REPORT = ROOT / "BENCHMARKS.md"
PY = str(Path(sys.executable))
CLI = str(Path(sys.executable).parent / "jelmore-infra")
TOPOLOGY = str(ROOT / "topology")
SCALE_POINTS = (100, 1_000, 5_000, 20_000)

#: How each figure is measured (printed under "Notes" in BENCHMARKS.md).
METHOD = (
    "`--help`, `validate`, `plan`, `apply`: the whole `.venv/bin/jelmore-infra` process, output "
    "discarded; baselines are whole processes too (`python -c pass`, `bench/raw_read.py`, "
    "`bench/raw_create.py`).",
    "plan figures run against a server holding exactly the topology (created by raw requests "
    "with the configs `apply` would send, taken from `plan --json` against an empty server); "
    "each server is checked to give a no-change plan before timing.",
    "synthetic topologies (bench/topogen.py): N streams × 4 consumer groups, memory storage, "
    "tiny limits; 5,000 resources = 1,000 streams + 4,000 groups.",
    "raw read (bench/raw_read.py): connect, paged `STREAM.LIST`, and per stream a paged "
    "`CONSUMER.LIST` started as soon as its page arrives, at most 32 in flight, every config "
    "decoded with json.loads.",
    "apply: every run (ours and baseline) on a fresh empty server; the baseline sends the same "
    "configs as concurrent `STREAM.CREATE` then `CONSUMER.CREATE` requests (256 in flight).",
    "peak memory: the plan child's maximum resident set size (`os.wait4` rusage).",
    "bytecode: jelmore_infra's `.pyc` files are compiled (`python -m compileall`) before the "
    "first run, as installing a package does; otherwise an environment with "
    "`PYTHONDONTWRITEBYTECODE` (this one sets it) would recompile every module from source in "
    "every run of ours, while nats-py's bytecode, which the baselines use, was compiled when it "
    "was installed. For the same reason the compiled methods of dataclasses are kept first "
    "(`python -m jelmore_infra.cli.codecache`, as `make install` does; the command line writes "
    "them itself where bytecode may be written).",
    "runtime figures (bench/runtime_bench.py) run against a server holding topology/ (applied "
    "by `jelmore-infra apply`); both sides build the same ~1.1 KB envelope and headers per "
    "event. publish: 2,000 sequential publishes per run. pipeline: 20,000 events, `Publisher` "
    "(window 256) vs nats-py `publish_async` with the same 256 in flight. consume: 10,000 "
    "prefilled events read by one worker on the `session_handlers` group "
    "(`subscribe_to_events`) vs a raw `fetch(100)` + json.loads + ack loop on the same durable. "
    "latency: a separate publisher process paces 1,000 events/s for 3 s (`publish_event` vs "
    "`js.publish`) and the group worker (`subscribe_to_events` vs raw fetch) records arrival - "
    "send time; the figure is the median over runs of each run's p99.",
)


class BenchError(Exception):
    """A benchmark could not be measured (the message says why)."""


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


# -- measuring processes ----------------------------------------------------------------------


def run_timed(cmd: Sequence[str], *, ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """Run ``cmd`` to completion; (wall seconds, the child's peak RSS in MB). Output is
    discarded; a bad exit code raises ``BenchError`` with the end of stderr."""
    with tempfile.TemporaryFile() as err:
        env = dict(os.environ, NO_COLOR="1")
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in ok:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
            raise BenchError(f"{' '.join(cmd[:3])} … exited {proc.returncode}: {' | '.join(tail)}")
    return elapsed, usage.ru_maxrss / 1024.0


def run_capture(cmd: Sequence[str], *, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1")
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout, check=False
    )


def interleave(
    ours: Callable[[], float],
    base: Callable[[], float] | None,
    reps: int,
    *,
    warmup: int = 1,
) -> tuple[list[float], list[float]]:
    """Warm up each side, then ``reps`` rounds of (ours, base); both sample lists."""
    for _ in range(warmup):
        ours()
        if base:
            base()
    ours_samples: list[float] = []
    base_samples: list[float] = []
    for _ in range(reps):
        ours_samples.append(ours())
        if base:
            base_samples.append(base())
    return ours_samples, base_samples


def fill(fig: H.Figure, ours: list[float], base: list[float]) -> None:
    fig.ours_samples, fig.base_samples = ours, base
    fig.ours = H.median(ours) if ours else None
    fig.base = H.median(base) if base else None


def not_measured(fig: H.Figure, reason: str) -> None:
    fig.note = f"not measured ({reason})"
    log(f"{fig.label}: {fig.note}")


# -- servers and topologies -------------------------------------------------------------------


def plan_configs(url: str, topology: Path) -> dict[str, Any]:
    """The configs apply would send for ``topology`` on an empty server (from `plan --json`)."""
    out = run_capture([CLI, "plan", "--json", "--topology", str(topology), "-s", url])
    if out.returncode != 0:
        raise BenchError(f"plan --json failed: {out.stderr.strip()[-300:]}")
    doc = json.loads(out.stdout)
    streams = [c["after"] for c in doc["changes"] if c["kind"] == "stream"]
    consumers = [[c["stream"], c["after"]] for c in doc["changes"] if c["kind"] == "consumer"]
    version = tuple(int(p) for p in doc["server"]["version"].split("-")[0].split(".")[:2])
    return {"streams": streams, "consumers": consumers, "pedantic": version >= (2, 11)}


def check_no_change(url: str, topology: Path | str) -> None:
    out = run_capture([CLI, "plan", "--detailed-exitcode", "--topology", str(topology), "-s", url])
    if out.returncode != 0:
        detail = (out.stdout.strip().splitlines() or [""])[-1] + " " + out.stderr.strip()[-200:]
        raise BenchError(f"plan is not a no-change plan (exit {out.returncode}): {detail}")


def compile_bytecode() -> None:
    """Compile jelmore_infra's bytecode, as installing the package would (see ``METHOD``)."""
    out = run_capture([PY, "-m", "compileall", "-q", str(ROOT / "jelmore_infra")])
    if out.returncode != 0:
        raise BenchError(f"compileall failed: {out.stdout.strip()[-300:]}")
    out = run_capture([PY, "-m", "jelmore_infra.cli.codecache"])
    if out.returncode != 0:
        raise BenchError(f"keeping the dataclass methods failed: {out.stderr.strip()[-300:]}")


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def machine_info(server_version: str) -> dict[str, Any]:
    mem = "unknown"
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        nats_py = version("nats-py")
    except Exception:
        nats_py = "unknown"
    commit = run_capture(["git", "rev-parse", "--short", "HEAD"]).stdout.strip() or "unknown"
    dirty = run_capture(["git", "status", "--porcelain", "--", "jelmore_infra"]).stdout.split("\n")
    changed = sorted({line[3:] for line in dirty if line.strip()})
    if changed:
        shown = ", ".join(changed[:6]) + (" …" if len(changed) > 6 else "")
        commit += f" plus uncommitted changes to {shown}"
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "nats-server": server_version,
        "nats-py": nats_py,
        "commit": commit,
    }


# -- the benchmarks ---------------------------------------------------------------------------


class Bench:
    def __init__(self, quick: bool, skip: set[str]) -> None:
        self.quick = quick
        self.skip = skip
        self.reps_small = 5 if quick else 9
        self.reps_plan = 3 if quick else 7
        self.points: list[H.ScalePoint] = []
        self.breakdowns: dict[str, dict[str, float]] = {}
        self.notes: list[str] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="jelmore-bench-"))
        self.server_version = "unknown"
        self.elapsed = 0.0
        self.load_before = "unknown"
        self.apply_configs: Path | None = None
        self.apply_topology: Path | None = None
        f = H.Figure
        t = H.Target
        self.fig = {
            "help": f(
                "help",
                "`jelmore-infra --help`",
                "s",
                (t("max", 0.15),),
                "python -c pass",
            ),
            "validate": f("validate", "`validate` of topology/", "s", (t("max", 0.35),)),
            "plan": f(
                "plan",
                "no-change `plan` of topology/",
                "s",
                (t("max", 0.6),),
                "raw read",
            ),
            "plan5k": f(
                "plan5k",
                "no-change `plan`, 5,000 resources",
                "s",
                (t("max_ratio", 2.5), t("max", 1.5)),
                "raw read",
            ),
            "validate5k": f(
                "validate5k", "`validate`, 5,000-resource topology", "s", (t("max", 1.0),)
            ),
            "scaling": f(
                "scaling",
                "`plan` at 100 … 20,000 resources (value: at the largest; chart)",
                "s",
                (),
                "raw read",
                custom_target="grows linearly; no step worse than linear",
            ),
            "apply5k": f(
                "apply5k",
                "`apply` from empty, 5,000 resources",
                "s",
                (t("max_ratio", 1.5),),
                "raw concurrent creates",
            ),
            "memory5k": f(
                "memory5k", "peak memory of `plan`, 5,000 resources", "MB", (t("max", 150),)
            ),
            "publish": f(
                "publish",
                "`publish_event` one at a time, ~1 KB",
                "ev/s",
                (t("min_ratio", 0.85),),
                "raw js.publish",
            ),
            "pipeline": f(
                "pipeline",
                "pipelined publishing (`Publisher`)",
                "ev/s",
                (t("min_ratio", 0.85), t("min", 10_000)),
                "raw publish_async",
            ),
            "consume": f(
                "consume",
                "one consumer-group worker, process + ack",
                "ev/s",
                (t("min_ratio", 0.85),),
                "raw fetch(100)+ack",
            ),
            "validate_publish": f(
                "validate_publish",
                "`publish_event` one at a time, payload validated (catalogue schema)",
                "ev/s",
                (t("min_ratio", 0.85),),
                "same, validation off",
            ),
            "validate_consume": f(
                "validate_consume",
                "one consumer-group worker, payload validated (catalogue schema)",
                "ev/s",
                (t("min_ratio", 0.85),),
                "same, validation off",
            ),
            "latency": f(
                "latency",
                "end-to-end latency p99 at 1,000 events/s",
                "ms",
                (t("max", 5.0),),
                "raw publish→fetch",
            ),
        }

    # whole commands -----------------------------------------------------------------------

    def timed(self, cmd: Sequence[str], ok: tuple[int, ...] = (0,)) -> Callable[[], float]:
        return lambda: run_timed(cmd, ok=ok)[0]

    def bench_help(self) -> None:
        fig = self.fig["help"]
        ours, base = interleave(
            self.timed([CLI, "--help"]), self.timed([PY, "-c", "pass"]), self.reps_small
        )
        fill(fig, ours, base)

    def bench_validate(self) -> None:
        fig = self.fig["validate"]
        ours, _ = interleave(
            self.timed([CLI, "validate", "--topology", TOPOLOGY]), None, self.reps_small
        )
        fill(fig, ours, [])

    def with_topology_server(self, body: Callable[[str], None]) -> None:
        """A server holding the repository's topology/, applied by `jelmore-infra apply`."""
        with NatsServer() as srv:
            self.server_version = srv.version
            out = run_capture(
                [CLI, "apply", "--auto-approve", "--topology", TOPOLOGY, "-s", srv.url]
            )
            if out.returncode != 0:
                raise BenchError(f"apply of topology/ failed: {out.stderr.strip()[-300:]}")
            body(srv.url)

    def bench_plan_topology(self, url: str) -> None:
        fig = self.fig["plan"]
        check_no_change(url, TOPOLOGY)
        ours, base = interleave(
            self.timed([CLI, "plan", "--topology", TOPOLOGY, "-s", url]),
            self.timed([PY, str(BENCH / "raw_read.py"), url]),
            self.reps_small,
        )
        fill(fig, ours, base)

    # scaling, plan at 5,000, memory, validate at 5,000 --------------------------------------

    def bench_scaling(self) -> None:
        points = SCALE_POINTS[:-1] if self.quick else SCALE_POINTS
        for resources in points:
            try:
                self.scale_point(resources)
            except BenchError as exc:
                log(f"{resources} resources: {exc}")
                self.notes.append(f"plan at {resources:,} resources not measured: {exc}")
                self.points.append(H.ScalePoint(resources, None, None, 0))
        fig = self.fig["scaling"]
        measured = [p for p in self.points if p.ours is not None]
        if len(measured) < 2:
            not_measured(fig, "fewer than two resource counts measured")
            return
        top = max(measured, key=lambda p: p.resources)
        fig.ours, fig.base = top.ours, top.base
        fig.custom_met = H.scaling_is_linear(self.points)
        fig.note = "see the chart"

    def scale_point(self, resources: int) -> None:
        directory = topogen.write_topology(self.tmp / f"topo{resources}", resources)
        reps = self.reps_plan if resources <= 5_000 else 3
        with NatsServer() as srv:
            self.server_version = srv.version
            spec = plan_configs(srv.url, directory)
            cfg = self.tmp / f"configs{resources}.json"
            cfg.write_text(json.dumps(spec))
            if resources == 5_000:
                self.apply_configs = cfg
                self.apply_topology = directory
            created, _ = run_timed([PY, str(BENCH / "raw_create.py"), srv.url, str(cfg)])
            log(f"{resources:,} resources created by raw requests in {created:.2f} s")
            check_no_change(srv.url, directory)
            memory: list[float] = []

            def ours() -> float:
                seconds, rss = run_timed([CLI, "plan", "--topology", str(directory), "-s", srv.url])
                memory.append(rss)
                return seconds

            base = self.timed([PY, str(BENCH / "raw_read.py"), srv.url])
            ours_s, base_s = interleave(ours, base, reps)
            point = H.ScalePoint(resources, H.median(ours_s), H.median(base_s), reps)
            self.points.append(point)
            log(
                f"plan at {resources:,}: ours {point.ours:.3f} s, raw {point.base:.3f} s "
                f"({reps} runs each)"
            )
            self.stage_breakdown(resources, srv.url, directory, point)
            if resources == 5_000:
                fill(self.fig["plan5k"], ours_s, base_s)
                mem = self.fig["memory5k"]
                fill(mem, memory[-reps:], [])
                mem.note = f"max RSS of the plan process; highest run {max(memory):.1f} MB"
                v_ours, _ = interleave(
                    self.timed([CLI, "validate", "--topology", str(directory)]),
                    None,
                    self.reps_plan,
                )
                fill(self.fig["validate5k"], v_ours, [])
        if resources > 5_000:
            self.notes.append(
                f"plan at {resources:,} resources: {reps} runs per side (fewer at the largest "
                "size to keep `make bench` within about 10 minutes)."
            )

    def stage_breakdown(
        self, resources: int, url: str, directory: Path, point: H.ScalePoint
    ) -> None:
        """Where ours spends its time at the two largest sizes (bench/stages.py, in-process)."""
        if resources < 5_000:
            return
        runs = 3 if resources <= 5_000 else 1
        out = run_capture(
            [
                PY,
                str(BENCH / "stages.py"),
                "--url",
                url,
                "--topology",
                str(directory),
                "--runs",
                str(runs),
                "--json",
            ]
        )
        try:
            stages = json.loads(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            self.notes.append(
                f"stage breakdown at {resources:,} resources failed: {out.stderr.strip()[-200:]}"
            )
            return
        self.breakdowns[f"plan at {resources:,} resources (whole process {point.ours:.3f} s)"] = {
            str(k): float(v) for k, v in stages.items()
        }

    # apply ------------------------------------------------------------------------------------

    def bench_apply(self) -> None:
        fig = self.fig["apply5k"]
        cfg, directory = self.apply_configs, self.apply_topology
        if cfg is None or directory is None:
            directory = topogen.write_topology(self.tmp / "topo5000", 5_000)
            with NatsServer() as srv:
                spec = plan_configs(srv.url, directory)
            cfg = self.tmp / "configs5000.json"
            cfg.write_text(json.dumps(spec))

        def fresh(cmd: Callable[[str], list[str]]) -> Callable[[], float]:
            def once() -> float:
                with NatsServer() as srv:
                    seconds, _ = run_timed(cmd(srv.url))
                    check_no_change(srv.url, directory)
                return seconds

            return once

        ours = fresh(
            lambda url: [CLI, "apply", "--auto-approve", "--topology", str(directory), "-s", url]
        )
        base = fresh(lambda url: [PY, str(BENCH / "raw_create.py"), url, str(cfg)])
        # 5 rounds, not 3: one run of either side slowed by other work on the machine moved the
        # median of 3 (and the ratio) by a quarter.
        reps = 3 if self.quick else 5
        ours_s, base_s = interleave(ours, base, reps)
        fill(fig, ours_s, base_s)
        fig.note = f"{reps} runs per side, each on a fresh empty server"
        self.apply_breakdown(directory, fig.ours)

    def apply_breakdown(self, directory: Path, whole: float | None) -> None:
        """Where an apply from empty spends its time (bench/stages.py --apply, in-process)."""
        out = run_capture(
            [PY, str(BENCH / "stages.py"), "--apply", "--topology", str(directory), "--json"]
        )
        try:
            stages = json.loads(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            self.notes.append(f"apply stage breakdown failed: {out.stderr.strip()[-200:]}")
            return
        title = "apply from empty at 5,000 resources"
        if whole is not None:
            title += f" (whole process {whole:.3f} s)"
        self.breakdowns[title] = {str(k): float(v) for k, v in stages.items()}

    # runtime ----------------------------------------------------------------------------------

    def bench_runtime(self, url: str) -> None:
        reps = {
            "publish": 7,
            "pipeline": 7,
            "consume": 7,
            "latency": 4,
            "validate_publish": 7,
            "validate_consume": 7,
        }
        if self.quick:
            reps = {k: 2 for k in reps}
        for key, count in reps.items():
            fig = self.fig[key]
            figure = key.replace("_", "-")
            out = run_capture(
                [PY, str(BENCH / "runtime_bench.py"), url, figure, str(count)], timeout=300
            )
            try:
                result = json.loads(out.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                not_measured(fig, f"runtime_bench.py {key} failed: {out.stderr.strip()[-200:]}")
                continue
            if "error" in result:
                not_measured(fig, str(result["error"])[:200])
                continue
            fill(fig, result["ours"], result["base"])
            if key == "latency":
                p50 = [d.get("p50_ms") for d in result["detail"]["ours"]]
                fig.note = "p50 of ours per run: " + ", ".join(f"{v:.2f} ms" for v in p50 if v)
            log(f"{fig.label}: ours {fig.ours}, raw {fig.base}")

    # driver -----------------------------------------------------------------------------------

    def section(self, name: str, keys: Sequence[str], body: Callable[[], None]) -> None:
        if name in self.skip:
            for key in keys:
                not_measured(self.fig[key], "skipped with --skip")
            return
        log(f"{name} …")
        try:
            body()
        except (BenchError, subprocess.TimeoutExpired, OSError, RuntimeError) as exc:
            for key in keys:
                if self.fig[key].ours is None and not self.fig[key].note:
                    not_measured(self.fig[key], str(exc)[:200])

    def run(self) -> None:
        compile_bytecode()
        self.load_before = load_average()
        started = time.monotonic()
        self.section("help", ["help"], self.bench_help)
        self.section("validate", ["validate"], self.bench_validate)

        def topology_benches() -> None:
            def body(url: str) -> None:
                if "plan" not in self.skip:
                    try:
                        self.bench_plan_topology(url)
                    except BenchError as exc:
                        not_measured(self.fig["plan"], str(exc)[:200])
                if "runtime" not in self.skip:
                    self.bench_runtime(url)

            self.with_topology_server(body)

        self.section(
            "topology",
            [
                "plan",
                "publish",
                "pipeline",
                "consume",
                "latency",
                "validate_publish",
                "validate_consume",
            ],
            topology_benches,
        )
        self.section("scaling", ["scaling", "plan5k", "memory5k", "validate5k"], self.bench_scaling)
        self.section("apply", ["apply5k"], self.bench_apply)
        self.elapsed = time.monotonic() - started

    def report(self) -> None:
        figures = list(self.fig.values())
        print()
        print(H.render_text_table(figures))
        now = datetime.now(UTC)
        machine = machine_info(self.server_version)
        machine["load average (1 min) before / after the run"] = (
            f"{self.load_before} / {load_average()} (other work on the machine adds noise)"
        )
        self.notes.append(f"whole `make bench` run took {self.elapsed:.0f} s")
        self.notes.append(
            "payload validation (validate_publish, validate_consume): both sides are the shim, "
            "with the event catalogue's schema validation on and off. Validation follows "
            "`jsonschema` (Draft 2020-12, validators built once per schema version); "
            '`jsonschema-rs` answers "valid?" first for schemas whose every keyword both read '
            "alike (docs/catalogue.md): 0.18 µs against jsonschema's 11.3 µs for a payload "
            "holding the schema's properties, 0.17 against 2.1 µs for the bench's payload, "
            "which holds none of them (best of 5 × 20,000, 2026-12-01)"
        )
        self.notes.extend(METHOD)
        for fig in figures:
            if fig.note and not fig.note.startswith("not measured"):
                self.notes.append(f"{fig.label}: {fig.note}")
        doc = {
            "generated": now.isoformat(timespec="seconds"),
            "quick": self.quick,
            "machine": machine,
            "figures": [f.to_dict() for f in figures],
            "scaling": [
                {"resources": p.resources, "ours": p.ours, "baseline": p.base, "runs": p.runs}
                for p in self.points
            ],
            "notes": self.notes,
            "plan_stage_breakdown": self.breakdowns,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        text = json.dumps(doc, indent=2) + "\n"
        (RESULTS / f"{now.strftime('%Y%m%dT%H%M%SZ')}.json").write_text(text)
        (RESULTS / "latest.json").write_text(text)
        CHART.write_text(H.render_svg_chart(self.points))
        REPORT.write_text(
            H.render_benchmarks_md(
                figures,
                self.points,
                machine,
                generated=now.strftime("%Y-%m-%d %H:%M UTC"),
                chart_file=str(CHART.relative_to(ROOT)),
                notes=self.notes,
                breakdowns=self.breakdowns,
            )
        )
        for note in self.notes:
            print(f"note: {note}")
        print(f"\nwrote {REPORT.relative_to(ROOT)}, {CHART.relative_to(ROOT)}, bench/results/")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer runs, no 20,000 point")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["help", "validate", "plan", "scaling", "apply", "runtime"],
    )
    args = parser.parse_args(argv)
    bench = Bench(args.quick, set(args.skip))
    try:
        bench.run()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    bench.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
