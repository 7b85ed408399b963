"""The pure helpers of the benchmark harness (bench/harness.py): statistics, target checks, the
results table, BENCHMARKS.md and the scaling chart. No timings are measured or asserted here."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from bench import harness as H
from bench import topogen


def test_median_of_odd_count_is_the_middle_value() -> None:
    assert H.median([3.0, 1.0, 2.0]) == 2.0


def test_median_of_even_count_is_the_mean_of_the_middle_two() -> None:
    assert H.median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_median_refuses_no_values() -> None:
    with pytest.raises(ValueError, match="no values"):
        H.median([])


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert H.percentile(values, 0) == 1.0
    assert H.percentile(values, 100) == 100.0
    assert H.percentile(values, 50) == pytest.approx(50.5)
    assert H.percentile(values, 99) == pytest.approx(99.01)


def test_percentile_refuses_out_of_range() -> None:
    with pytest.raises(ValueError, match="outside"):
        H.percentile([1.0], 101)


def test_ratio_is_ours_over_baseline_and_none_when_missing() -> None:
    assert H.ratio(3.0, 2.0) == 1.5
    assert H.ratio(None, 2.0) is None
    assert H.ratio(1.0, None) is None
    assert H.ratio(1.0, 0.0) is None


@pytest.mark.parametrize(
    ("target", "ours", "base", "expected"),
    [
        (H.Target("max", 0.15), 0.14, None, True),
        (H.Target("max", 0.15), 0.16, None, False),
        (H.Target("max", 0.15), 0.15, None, True),
        (H.Target("min", 10_000), 9_999, None, False),
        (H.Target("min", 10_000), 12_000, None, True),
        (H.Target("max_ratio", 2.5), 1.0, 0.5, True),
        (H.Target("max_ratio", 2.5), 1.3, 0.5, False),
        (H.Target("min_ratio", 0.85), 85.0, 100.0, True),
        (H.Target("min_ratio", 0.85), 84.0, 100.0, False),
        (H.Target("max_ratio", 1.5), 1.0, None, None),
        (H.Target("max", 1.0), None, 1.0, None),
    ],
)
def test_target_checks_bound_or_ratio(
    target: H.Target, ours: float | None, base: float | None, expected: bool | None
) -> None:
    assert target.check(ours, base) is expected


def test_figure_is_met_only_when_every_target_is_met() -> None:
    fig = H.Figure(
        "plan5k",
        "plan",
        "s",
        (H.Target("max_ratio", 2.5), H.Target("max", 1.5)),
        "raw read",
        ours=1.2,
        base=0.6,
    )
    assert fig.met is True
    fig.ours = 1.6  # over 1.5 s (ratio 2.67×)
    assert fig.met is False
    fig.ours, fig.base = 1.4, 0.5  # ratio 2.8× misses, absolute bound met
    assert fig.met is False


def test_figure_without_a_number_is_not_judged() -> None:
    fig = H.Figure("x", "x", "s", (H.Target("max", 1.0),))
    assert fig.met is None
    assert H.Figure("y", "y", "s", ours=1.0).met is None


def test_custom_target_uses_its_own_verdict() -> None:
    fig = H.Figure("scaling", "scaling", "s", custom_target="linear", custom_met=False, ours=1.0)
    assert fig.met is False
    assert fig.target_text() == "linear"


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.1234, "s", "0.123 s"),
        (12.345, "s", "12.35 s"),
        (1.234, "ms", "1.23 ms"),
        (83.14, "MB", "83.1 MB"),
        (12345.6, "ev/s", "12,346 ev/s"),
        (None, "s", "—"),
    ],
)
def test_values_are_formatted_with_their_unit(value: float | None, unit: str, text: str) -> None:
    assert H.format_value(value, unit) == text


def test_target_text_joins_several_targets() -> None:
    fig = H.Figure("p", "p", "ev/s", (H.Target("min_ratio", 0.85), H.Target("min", 10_000)), "raw")
    assert fig.target_text() == "≥ 0.85× baseline and ≥ 10,000 ev/s"


def _figures() -> list[H.Figure]:
    return [
        H.Figure("help", "`--help`", "s", (H.Target("max", 0.15),), "python -c pass", 0.1, 0.02),
        H.Figure("rate", "publish", "ev/s", (H.Target("min_ratio", 0.85),), "raw", 80.0, 100.0),
        H.Figure(
            "gone",
            "consume",
            "ev/s",
            (H.Target("min_ratio", 0.85),),
            "raw",
            note="not measured (runtime missing)",
        ),
    ]


def test_text_table_has_a_header_and_one_aligned_line_per_figure() -> None:
    text = H.render_text_table(_figures())
    lines = text.splitlines()
    assert lines[0].split() == ["figure", "ours", "baseline", "ratio", "target", "met?"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 2 + 3
    assert "5.00×" in lines[2] and lines[2].endswith("yes")
    assert "0.80×" in lines[3] and lines[3].endswith("NO")
    assert "not measured (runtime missing)" in lines[4]
    assert lines[4].endswith("not measured")


def test_markdown_table_escapes_pipes_and_has_six_columns() -> None:
    fig = H.Figure("x", "a | b", "s", (H.Target("max", 1.0),), ours=0.5)
    table = H.render_markdown_table([fig])
    rows = table.strip().splitlines()
    assert rows[0] == "| figure | ours | baseline | ratio | target | met? |"
    assert "a \\| b" in rows[2]
    assert rows[2].count(" | ") == 5


def test_scaling_steps_compare_time_growth_with_resource_growth() -> None:
    points = [
        H.ScalePoint(100, 0.2, 0.1),
        H.ScalePoint(1_000, 0.5, 0.2),
        H.ScalePoint(5_000, 4.0, 0.3),  # ×8 in time for ×5 resources: worse than linear
    ]
    steps = H.linear_steps(points)
    assert [(a, b) for a, b, *_ in steps] == [(100, 1_000), (1_000, 5_000)]
    assert steps[0][4] is True
    assert steps[1][4] is False
    assert H.scaling_is_linear(points) is False
    assert H.scaling_is_linear(points[:2]) is True


def test_scaling_ignores_unmeasured_points_and_needs_two() -> None:
    assert H.scaling_is_linear([H.ScalePoint(100, 0.2, 0.1)]) is None
    points = [H.ScalePoint(100, 0.2, 0.1), H.ScalePoint(1_000, None, None)]
    assert H.scaling_is_linear(points) is None


def test_svg_chart_is_well_formed_with_both_series() -> None:
    points = [H.ScalePoint(100, 0.2, 0.1), H.ScalePoint(5_000, 1.5, 0.3)]
    svg = H.render_svg_chart(points)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert len(root.findall(f"{ns}polyline")) == 2
    assert len(root.findall(f"{ns}circle")) == 4
    assert "5,000" in svg


def test_ascii_chart_shows_every_point_or_says_not_measured() -> None:
    text = H.render_ascii_chart([H.ScalePoint(100, 1.0, None)])
    assert "#" * 50 in text
    assert "not measured" in text


def test_benchmarks_md_has_table_machine_chart_and_count_of_met_targets() -> None:
    md = H.render_benchmarks_md(
        _figures(),
        [H.ScalePoint(100, 0.2, 0.1), H.ScalePoint(1_000, 0.4, 0.2)],
        {"cores": 2, "nats-server": "2.15.1"},
        generated="2026-01-01 00:00 UTC",
        chart_file="bench/plan_scaling.svg",
        notes=["a note"],
    )
    assert "**1 of 2 judged figures met their targets.**" in md
    assert "| figure | ours | baseline | ratio | target | met? |" in md
    assert "- cores: 2" in md and "- nats-server: 2.15.1" in md
    assert "![plan time vs resource count](bench/plan_scaling.svg)" in md
    assert "100 → 1,000: time ×2.00, resources ×10: linear or better" in md
    assert "- a note" in md


def test_benchmarks_md_shows_stage_breakdowns_with_nested_rows_marked() -> None:
    md = H.render_benchmarks_md(
        [],
        [],
        {},
        generated="now",
        chart_file="c.svg",
        breakdowns={"plan at 5,000": {"check_semantics": 0.3, "  of which overlaps": 0.25}},
    )
    assert "## Where plan and apply time goes" in md
    assert "**plan at 5,000**" in md
    assert "| check_semantics | 0.300 |" in md
    assert "| ↳ of which overlaps | 0.250 |" in md


def test_figure_to_dict_carries_samples_ratio_and_verdict() -> None:
    fig = _figures()[1]
    fig.ours_samples = [79.0, 80.0, 81.0]
    doc = fig.to_dict()
    assert doc["ratio"] == pytest.approx(0.8)
    assert doc["met"] is False
    assert doc["ours_samples"] == [79.0, 80.0, 81.0]
    assert doc["target"] == "≥ 0.85× baseline"


def test_synthetic_topology_has_four_groups_per_stream() -> None:
    assert topogen.streams_for(5_000) == 1_000
    streams, groups = topogen.topology_yaml(2)
    assert streams.count("storage: memory") == 2
    assert groups.count("    stream: BENCH_") == 8
    with pytest.raises(ValueError, match="multiple of 5"):
        topogen.streams_for(101)
