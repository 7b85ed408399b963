"""Pure helpers of the benchmark harness: statistics, targets, the results table, BENCHMARKS.md
and the scaling chart (SVG and ASCII). No I/O, no clock: bench/run.py measures, this module only
turns numbers into verdicts and text, so it is unit-tested (tests/unit/test_bench_harness.py).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

#: What a target compares: ours against a fixed bound, or ours/baseline against a bound.
TargetKind = Literal["max", "min", "max_ratio", "min_ratio"]


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence (mean of the two middle values for an even count)."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2.0


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0–100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"percentile {pct} is outside 0..100")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(ours: float | None, base: float | None) -> float | None:
    """``ours / base``; ``None`` when either is missing or the baseline is not positive."""
    if ours is None or base is None or base <= 0:
        return None
    return ours / base


@dataclass(frozen=True, slots=True)
class Target:
    """One target of a figure: ``ours <= bound`` (max), ``ours >= bound`` (min), or the same for
    ``ours / baseline`` (max_ratio, min_ratio)."""

    kind: TargetKind
    bound: float

    def check(self, ours: float | None, base: float | None) -> bool | None:
        """True/False when it can be judged, ``None`` when a needed number is missing."""
        value = ours if self.kind in ("max", "min") else ratio(ours, base)
        if value is None:
            return None
        if self.kind in ("max", "max_ratio"):
            return value <= self.bound
        return value >= self.bound

    def describe(self, unit: str) -> str:
        if self.kind == "max":
            return f"≤ {format_value(self.bound, unit)}"
        if self.kind == "min":
            return f"≥ {format_value(self.bound, unit)}"
        sign = "≤" if self.kind == "max_ratio" else "≥"
        return f"{sign} {self.bound:g}× baseline"


@dataclass
class Figure:
    """One row of the results table."""

    key: str
    label: str
    unit: str  # "s", "ms", "MB", "ev/s"
    targets: tuple[Target, ...] = ()
    baseline_label: str = "—"
    ours: float | None = None
    base: float | None = None
    ours_samples: list[float] = field(default_factory=list)
    base_samples: list[float] = field(default_factory=list)
    note: str = ""  # "not measured (reason)" or how it was measured
    #: a target that is not a bound on one number (the scaling check), with its verdict
    custom_target: str = ""
    custom_met: bool | None = None

    @property
    def ratio(self) -> float | None:
        return ratio(self.ours, self.base)

    @property
    def met(self) -> bool | None:
        """All targets met (True), one missed (False), or not judged (None)."""
        if self.custom_target:
            return self.custom_met
        verdicts = [t.check(self.ours, self.base) for t in self.targets]
        if not verdicts or any(v is None for v in verdicts):
            return None
        return all(bool(v) for v in verdicts)

    def target_text(self) -> str:
        if self.custom_target:
            return self.custom_target
        return " and ".join(t.describe(self.unit) for t in self.targets) or "—"

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "ours": self.ours,
            "baseline": self.base,
            "baseline_label": self.baseline_label,
            "ratio": self.ratio,
            "targets": [{"kind": t.kind, "bound": t.bound} for t in self.targets],
            "target": self.target_text(),
            "met": self.met,
            "ours_samples": self.ours_samples,
            "baseline_samples": self.base_samples,
            "note": self.note,
        }


def format_value(value: float | None, unit: str) -> str:
    """A figure's value with its unit: ``0.123 s``, ``1.45 ms``, ``83.1 MB``, ``12,345 ev/s``."""
    if value is None:
        return "—"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "ev/s":
        return f"{value:,.0f} ev/s"
    return f"{value:g} {unit}".strip()


def format_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def format_met(met: bool | None, note: str = "") -> str:
    if met is None:
        return "not measured" if note.startswith("not measured") else "—"
    return "yes" if met else "NO"


TABLE_HEADER = ("figure", "ours", "baseline", "ratio", "target", "met?")


def table_rows(figures: Sequence[Figure]) -> list[tuple[str, str, str, str, str, str]]:
    """One row of six cells per figure (header not included)."""
    rows = []
    for fig in figures:
        ours = format_value(fig.ours, fig.unit)
        if fig.ours is None and fig.note.startswith("not measured"):
            ours = fig.note
        base = format_value(fig.base, fig.unit)
        if fig.base is not None and fig.baseline_label != "—":
            base = f"{base} ({fig.baseline_label})"
        elif fig.base is None and fig.baseline_label != "—":
            base = f"— ({fig.baseline_label})"
        rows.append(
            (
                fig.label,
                ours,
                base,
                format_ratio(fig.ratio),
                fig.target_text(),
                format_met(fig.met, fig.note),
            )
        )
    return rows


def render_text_table(figures: Sequence[Figure]) -> str:
    """The console table: aligned columns, one line per figure."""
    rows = [TABLE_HEADER, *table_rows(figures)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(TABLE_HEADER))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown_table(figures: Sequence[Figure]) -> str:
    """The same table as GitHub Markdown."""
    lines = [
        "| " + " | ".join(TABLE_HEADER) + " |",
        "|" + "|".join("---" for _ in TABLE_HEADER) + "|",
    ]
    for row in table_rows(figures):
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


# -- scaling ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScalePoint:
    """Plan time (median seconds, whole process) at one resource count."""

    resources: int
    ours: float | None
    base: float | None
    runs: int = 0


def linear_steps(
    points: Sequence[ScalePoint], tolerance: float = 1.1
) -> list[tuple[int, int, float, float, bool]]:
    """Each step between consecutive measured points: (from, to, time growth, resource growth,
    no worse than linear). A step is "no worse than linear" when the time grew by at most the
    resource growth times ``tolerance`` (noise allowance)."""
    measured = sorted((p for p in points if p.ours is not None), key=lambda p: p.resources)
    steps = []
    for a, b in itertools.pairwise(measured):
        assert a.ours is not None
        assert b.ours is not None
        growth = b.ours / a.ours if a.ours > 0 else math.inf
        allowed = b.resources / a.resources
        steps.append((a.resources, b.resources, growth, allowed, growth <= allowed * tolerance))
    return steps


def scaling_is_linear(points: Sequence[ScalePoint], tolerance: float = 1.1) -> bool | None:
    """True when no step is worse than linear; None with fewer than two measured points."""
    steps = linear_steps(points, tolerance)
    if not steps:
        return None
    return all(step[4] for step in steps)


def _log_scale(value: float, low: float, high: float, size: float) -> float:
    if high <= low:
        return 0.0
    return (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low)) * size


def render_svg_chart(points: Sequence[ScalePoint], title: str = "plan time vs resources") -> str:
    """A small log-log SVG line chart of ours and the raw baseline against resource count."""
    width, height = 640, 400
    left, right, top, bottom = 70, 150, 40, 50
    pw, ph = width - left - right, height - top - bottom
    series = {
        "jelmore-infra plan": ([(p.resources, p.ours) for p in points if p.ours], "#d62728"),
        "raw nats-py read": ([(p.resources, p.base) for p in points if p.base], "#1f77b4"),
    }
    xs = [p.resources for p in points] or [1]
    ys = [v for data, _ in series.values() for _, v in data if v] or [1.0]
    x_low, x_high = min(xs), max(xs)
    y_low = 10 ** math.floor(math.log10(min(ys)))
    y_high = 10 ** math.ceil(math.log10(max(ys)))
    if y_high <= y_low:
        y_high = y_low * 10

    def px(x: float) -> float:
        return left + _log_scale(x, x_low, x_high, pw) if x_high > x_low else left + pw / 2

    def py(y: float) -> float:
        return top + ph - _log_scale(y, y_low, y_high, ph)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2:.0f}" y="22" text-anchor="middle" font-size="15">{title}</text>',
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>',
    ]
    for x in sorted(set(xs)):
        out.append(
            f'<line x1="{px(x):.1f}" y1="{top}" x2="{px(x):.1f}" y2="{top + ph}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{px(x):.1f}" y="{top + ph + 18}" text-anchor="middle">{x:,}</text>')
    decade = y_low
    while decade <= y_high * 1.0001:
        y = py(decade)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{decade:g} s</text>')
        decade *= 10
    out.append(
        f'<text x="{left + pw / 2:.0f}" y="{height - 12}" text-anchor="middle">'
        "resources (streams + consumer groups, log scale)</text>"
    )
    out.append(
        f'<text x="16" y="{top + ph / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {top + ph / 2:.0f})">seconds, whole process (log)</text>'
    )
    for index, (name, (data, colour)) in enumerate(series.items()):
        if data:
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in data if y)
            out.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
            for x, y in data:
                if y:
                    out.append(
                        f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{colour}"/>'
                    )
        ly = top + 10 + index * 20
        out.append(
            f'<line x1="{left + pw + 12}" y1="{ly}" x2="{left + pw + 32}" y2="{ly}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        out.append(f'<text x="{left + pw + 36}" y="{ly + 4}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_ascii_chart(points: Sequence[ScalePoint], width: int = 50) -> str:
    """Horizontal bars of plan time per resource count (ours ``#``, baseline ``=``)."""
    values = [v for p in points for v in (p.ours, p.base) if v]
    top = max(values) if values else 1.0
    lines = []
    for p in sorted(points, key=lambda q: q.resources):
        for mark, value, name in (("#", p.ours, "ours"), ("=", p.base, "raw ")):
            bar = mark * max(1, round(value / top * width)) if value else ""
            shown = f"{value:.3f} s" if value else "not measured"
            lines.append(f"{p.resources:>7,} {name} |{bar.ljust(width)}| {shown}")
    return "\n".join(lines) + "\n"


def render_benchmarks_md(
    figures: Sequence[Figure],
    points: Sequence[ScalePoint],
    machine: Mapping[str, Any],
    *,
    generated: str,
    chart_file: str,
    notes: Sequence[str] = (),
    breakdowns: Mapping[str, Mapping[str, float]] | None = None,
) -> str:
    """The whole BENCHMARKS.md: how it was measured, the table, the machine, the chart."""
    met = [f for f in figures if f.met is True]
    judged = [f for f in figures if f.met is not None]
    parts = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (bench/run.py); do not edit by hand. "
        f"Run of {generated}. Raw results: `bench/results/latest.json`.",
        "",
        "Every figure is the median of several runs after a warm-up. Each baseline ran in the "
        "same invocation against the same kind of local nats-server, interleaved with ours (ours, "
        "baseline, ours, baseline, …), so the ratio holds on a noisy machine. Whole-command "
        "figures time the whole process, Python start-up included. Rates: higher is better; "
        "times, memory and latency: lower is better.",
        "",
        f"**{len(met)} of {len(judged)} judged figures met their targets.**",
        "",
        render_markdown_table(figures).rstrip(),
        "",
        "## Machine",
        "",
    ]
    for key, value in machine.items():
        parts.append(f"- {key}: {value}")
    parts += [
        "",
        "## Plan time against resource count",
        "",
        f"![plan time vs resource count]({chart_file})",
        "",
        "| resources | ours | raw read | ratio | runs |",
        "|---|---|---|---|---|",
    ]
    for p in sorted(points, key=lambda q: q.resources):
        parts.append(
            f"| {p.resources:,} | {format_value(p.ours, 's')} | {format_value(p.base, 's')} | "
            f"{format_ratio(ratio(p.ours, p.base))} | {p.runs} |"
        )
    parts += ["", "Growth per step (time growth vs resource growth; linear or better is ≤):", ""]
    for a, b, growth, allowed, ok in linear_steps(points):
        verdict = "linear or better" if ok else "WORSE than linear"
        parts.append(f"- {a:,} → {b:,}: time ×{growth:.2f}, resources ×{allowed:.0f}: {verdict}")
    parts += ["", "```", render_ascii_chart(points).rstrip(), "```", ""]
    if breakdowns:
        parts += [
            "## Where plan and apply time goes",
            "",
            "Wall-clock seconds per stage of `plan`, measured in-process without a profiler by "
            "bench/stages.py against the same server, and of `apply` from empty (`stages.py "
            "--apply`, each run on a fresh server) (↳ rows are part of the row above, not extra "
            "time).",
            "",
        ]
        for title, stages in breakdowns.items():
            parts += [f"**{title}**", "", "| stage | seconds |", "|---|---|"]
            for name, seconds in stages.items():
                label = f"↳ {name.strip()}" if name.startswith(" ") else name
                parts.append(f"| {_md_cell(label)} | {seconds:.3f} |")
            parts.append("")
    if notes:
        parts += ["## Notes", ""]
        parts += [f"- {n}" for n in notes]
        parts.append("")
    return "\n".join(parts)
