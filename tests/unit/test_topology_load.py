"""Loading topology directories into the desired model, and writing it back as YAML (import)."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from jelmore_infra import model
from jelmore_infra.diagnostics import Location
from jelmore_infra.errors import TopologyError
from jelmore_infra.topology import check_topology, load_topology, parse_sources
from jelmore_infra.topology import load as loader
from jelmore_infra.topology.emit import dump_topology, human_size
from jelmore_infra.topology.load import plain_value, read_yaml
from jelmore_infra.topology.nodes import Map, Scalar
from tests.support.cli import run_cli

REPO = Path(__file__).resolve().parents[2]
SECOND = 1_000_000_000
DAY = 86400 * SECOND


def test_repository_topology_carries_the_seed_numbers() -> None:
    topology = load_topology(REPO / "topology")
    assert set(topology.streams) == {"JELMORE", "JELMORE_DLQ", "JELMORE_ADVISORIES"}
    main = topology.streams["JELMORE"].config
    assert main["subjects"] == ["jelmore.session.>"]
    assert main["storage"] == "file"
    assert main["max_age"] == 7 * DAY
    assert main["max_msgs"] == 100_000
    assert main["max_bytes"] == 10_000_000_000
    assert main["discard"] == "old"
    assert main["duplicate_window"] == 60 * SECOND
    dlq = topology.streams["JELMORE_DLQ"].config
    assert dlq["subjects"] == ["jelmore.dlq.>"]
    assert dlq["storage"] == "file"
    assert dlq["max_age"] == 30 * DAY
    assert dlq["max_msgs"] == 10_000
    assert dlq["max_bytes"] == 1_000_000_000
    advisories = topology.streams["JELMORE_ADVISORIES"].config
    assert advisories["subjects"] == ["$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.JELMORE.*"]
    router = topology.consumers[("JELMORE_ADVISORIES", "dlq_router")].config
    assert router["max_deliver"] == -1
    assert router["ack_policy"] == "explicit"
    groups = {k: c for k, c in topology.consumers.items() if k[0] == "JELMORE"}
    filters = {name: c.config["filter_subjects"] for (stream, name), c in groups.items()}
    assert filters == {
        "session_handlers": ["jelmore.session.>"],
        "file_watchers": ["jelmore.session.directory_changed", "jelmore.session.file_modified"],
        "git_monitors": ["jelmore.session.git_activity"],
        "system_monitors": ["jelmore.session.status", "jelmore.session.failed"],
    }
    for (stream, name), spec in groups.items():
        assert stream == "JELMORE" and spec.stream == "JELMORE" and spec.name == name
        assert spec.config["durable_name"] == name
        assert spec.config["max_deliver"] == 3
        assert spec.config["ack_policy"] == "explicit"
        meta = spec.config["metadata"]
        assert meta[model.META_RETRY_DELAYS] == "2s,4s,8s"
        assert meta[model.META_DEAD_LETTER_STREAM] == "JELMORE_DLQ"
        assert meta[model.META_DEAD_LETTER_SUBJECT] == f"jelmore.dlq.{name}"
        assert meta[model.MANAGED_BY_KEY] == model.MANAGED_BY_VALUE


def test_model_holds_only_what_the_user_wrote_plus_name_and_marker() -> None:
    topology, diags = parse_sources(
        [
            (
                "t.yaml",
                "streams:\n  S:\n    subjects: [s.>]\n    metadata: {team: core}\n"
                "consumer_groups:\n  g:\n    stream: S\n",
            )
        ]
    )
    assert diags == [] and topology is not None
    assert topology.streams["S"].config == {
        "name": "S",
        "subjects": ["s.>"],
        "metadata": {model.MANAGED_BY_KEY: model.MANAGED_BY_VALUE, "team": "core"},
    }
    assert topology.consumers[("S", "g")].config == {
        "durable_name": "g",
        "metadata": {model.MANAGED_BY_KEY: model.MANAGED_BY_VALUE},
    }


def test_locations_point_at_each_value() -> None:
    text = "streams:\n  S:\n    subjects:\n      - a.>\n    placement: {cluster: c1}\n"
    topology, _ = parse_sources([("t.yaml", text)])
    assert topology is not None
    spec = topology.streams["S"]
    assert str(spec.location) == "t.yaml:2:3"
    assert str(spec.locations["subjects.0"]) == "t.yaml:4:9"
    assert str(spec.locations["placement.cluster"]) == "t.yaml:5:26"


def test_every_written_setting_has_its_location_as_a_location() -> None:
    # Places are kept as the located nodes and made Locations when read; every way of reading
    # them gives Locations, equal to those made at once.
    text = "streams:\n  S:\n    subjects: [a.>, b.>]\n    max_age: 1h\n"
    text += "consumer_groups:\n  g:\n    stream: S\n    ack_wait: 30s\n"
    topology, _ = parse_sources([("t.yaml", text)])
    assert topology is not None
    stream = topology.streams["S"].locations
    assert dict(stream) == {
        "subjects.0": Location("t.yaml", 3, 16),
        "subjects.1": Location("t.yaml", 3, 21),
        "subjects": Location("t.yaml", 3, 15),
        "max_age": Location("t.yaml", 4, 14),
    }
    assert all(type(loc) is Location for loc in stream.values())
    assert stream.get("nope") is None
    group = topology.consumers[("S", "g")].locations
    assert dict(group.items()) == {
        "stream": Location("t.yaml", 7, 13),
        "ack_wait": Location("t.yaml", 8, 15),
    }


def test_files_are_merged_in_sorted_order_and_other_files_ignored(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("consumer_groups:\n  g:\n    stream: S\n")
    (tmp_path / "a.yaml").write_text("streams:\n  S: {}\n")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "comments.yaml").write_text("# nothing here yet\n")
    (tmp_path / "notes.txt").write_text("streams: [broken")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.yaml").write_text("streams: [broken")
    topology = load_topology(tmp_path)
    assert list(topology.streams) == ["S"]
    assert list(topology.consumers) == [("S", "g")]


def test_paths_in_diagnostics_are_shown_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "topo").mkdir()
    (tmp_path / "topo" / "s.yaml").write_text("streams:\n  S:\n    max_age: 1x\n")
    monkeypatch.chdir(tmp_path)
    _, diags = check_topology("topo")
    assert [str(d.location) for d in diags] == [os.path.join("topo", "s.yaml") + ":3:14"]


def test_load_topology_raises_with_every_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("streams:\n  S:\n    max_age: 1x\n    num_replicas: 9\n")
    with pytest.raises(TopologyError) as info:
        load_topology(tmp_path)
    assert len(info.value.diagnostics) == 2
    assert str(info.value) == "topology is invalid: 2 errors"


def test_missing_or_empty_directory_is_one_clear_error(tmp_path: Path) -> None:
    topology, diags = check_topology(tmp_path / "nope")
    assert topology is None
    assert [d.message for d in diags] == [
        f"topology directory '{tmp_path / 'nope'}' does not exist"
    ]
    topology, diags = check_topology(tmp_path)
    assert topology is None
    assert [d.message for d in diags] == [f"no topology files (*.yaml) in '{tmp_path}'"]


def test_a_file_that_is_not_utf8_is_reported_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_bytes(b"streams:\n  S:\n    description: caf\xe9\n")
    topology, diags = check_topology(tmp_path)
    assert topology is None
    assert diags[0].message == "the file is not valid UTF-8 text"
    assert diags[0].location is not None and diags[0].location.line == 3


def test_anchors_and_merge_keys_are_read() -> None:
    text = dedent("""\
        streams:
          S: {subjects: [s.>]}
        consumer_groups:
          a: &defaults
            stream: S
            ack_policy: explicit
            max_deliver: 3
            filter_subjects: [s.a]
          b:
            <<: *defaults
            filter_subjects: [s.b]
        """)
    topology, diags = parse_sources([("t.yaml", text)])
    assert diags == [] and topology is not None
    b = topology.consumers[("S", "b")].config
    assert b["max_deliver"] == 3 and b["filter_subjects"] == ["s.b"]


def test_recursive_aliases_are_an_error_not_a_crash() -> None:
    text = "streams:\n  S: &x\n    metadata: *x\n"
    topology, diags = parse_sources([("t.yaml", text)])
    assert topology is None
    assert any("contains itself" in d.message for d in diags)


def test_alias_bombs_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append("streams: {S: {metadata: {k: v}}}")
    topology, diags = parse_sources([("t.yaml", "\n".join(lines) + "\n")])
    assert topology is None
    assert any("expands to more than" in d.message for d in diags)


def test_alias_bombs_are_named_as_such() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    _, diags = parse_sources([("t.yaml", "\n".join(lines) + "\n")])
    assert [d.message for d in diags] == [
        f"the file expands to more than {loader.MAX_ALIAS_VALUES:,} values through YAML aliases"
    ]


# --- unreadable entries, size and value limits ------------------------------------------------

STREAMS = "streams:\n  S:\n    subjects: [s.>]\n"
GROUPS = "consumer_groups:\n  g:\n    stream: S\n"


def _messages(directory: Path) -> list[str]:
    topology, diags = check_topology(directory)
    assert topology is None
    return [d.message for d in diags]


def test_a_dangling_symlink_is_an_error_naming_its_target(tmp_path: Path) -> None:
    (tmp_path / "streams.yaml").write_text(STREAMS)
    (tmp_path / "consumer_groups.yaml").symlink_to("missing.yaml")
    assert _messages(tmp_path) == [
        f"cannot read {tmp_path / 'consumer_groups.yaml'}: "
        "it is a dangling symlink to 'missing.yaml'"
    ]


def test_a_symlink_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "streams.yaml").write_text(STREAMS)
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "b.yaml").symlink_to("a.yaml")
    messages = _messages(tmp_path)
    assert messages == [
        f"cannot read {tmp_path / 'a.yaml'}: it is a symlink loop (through 'b.yaml')",
        f"cannot read {tmp_path / 'b.yaml'}: it is a symlink loop (through 'a.yaml')",
    ]


def test_a_directory_or_fifo_named_like_a_topology_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "streams.yaml").write_text(STREAMS)
    (tmp_path / "groups.yaml").mkdir()
    os.mkfifo(tmp_path / "pipe.yml")  # opening it would block: it must never be opened
    assert _messages(tmp_path) == [
        f"cannot read {tmp_path / 'groups.yaml'}: it is a directory",
        f"cannot read {tmp_path / 'pipe.yml'}: it is not a regular file",
    ]


def test_a_symlink_to_a_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "streams.yaml").write_text(STREAMS)
    (tmp_path / "topo").mkdir()
    (tmp_path / "topo" / "streams.yaml").symlink_to(tmp_path / "real" / "streams.yaml")
    assert list(load_topology(tmp_path / "topo").streams) == ["S"]


def test_hidden_files_are_not_topology_files(tmp_path: Path) -> None:
    (tmp_path / "streams.yaml").write_text(STREAMS)
    (tmp_path / ".#streams.yaml").symlink_to("root@host.1234")  # an editor's lock file
    (tmp_path / ".old.yaml").write_text("streams: [broken")
    assert list(load_topology(tmp_path).streams) == ["S"]


def test_an_unreadable_file_stops_checks_across_files(tmp_path: Path) -> None:
    (tmp_path / "streams.yaml").symlink_to("gone.yaml")
    (tmp_path / "groups.yaml").write_text(GROUPS + "    max_deliver: [1]\n")
    # the group's own mistake is reported; its stream, defined in the unread file, is not
    # called missing
    messages = _messages(tmp_path)
    assert len(messages) == 2
    assert messages[0].endswith("it is a dangling symlink to 'gone.yaml'")
    assert "max_deliver" in messages[1]


def test_a_file_that_cannot_be_parsed_stops_checks_across_files() -> None:
    sources = [("a.yaml", "streams:\n  S: [\n"), ("b.yaml", GROUPS)]
    _, diags = parse_sources(sources)
    assert [str(d.location).split(":")[0] for d in diags] == ["a.yaml"]
    assert diags[0].message.startswith("YAML syntax error")


def test_a_file_over_the_byte_limit_is_refused_before_it_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 1000)
    (tmp_path / "streams.yaml").write_text(STREAMS)
    (tmp_path / "big.yaml").write_text("streams: [" + "x" * 1000)  # a syntax error, if parsed
    assert _messages(tmp_path) == [
        f"{tmp_path / 'big.yaml'} is 1,010 bytes; the limit is 1,000 bytes per topology file"
    ]


def test_the_byte_limit_is_documented_in_the_message(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:  # sparse: no time or disk spent on its bytes
        f.truncate(50 * 1024 * 1024)
    assert _messages(tmp_path) == [
        f"{big} is 52,428,800 bytes; the limit is 16,777,216 bytes per topology file"
    ]


def test_many_plain_values_hit_the_value_limit_without_blaming_aliases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loader, "MAX_VALUES", 100)
    entries = "".join(f"      k{i}: v\n" for i in range(150))
    text = f"streams:\n  S:\n    metadata:\n{entries}    max_age:\n"
    _, diags = parse_sources([("t.yaml", text)])
    # one message, and no follow-on about the values after the limit (max_age "has no value")
    assert [d.format() for d in diags] == [
        "t.yaml:100:12: error: the file has more than 100 values; split it into several files"
    ]


def test_aliases_have_their_own_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_ALIAS_VALUES", 10)
    text = "streams:\n  S: &s {subjects: [a, b, c]}\n  T: *s\n  U: *s\n  V: *s\n"
    _, diags = parse_sources([("t.yaml", text)])
    assert [d.format() for d in diags] == [
        "t.yaml:5:6: error: the file expands to more than 10 values through YAML aliases"
    ]


def test_limits_leave_room_for_a_20000_resource_topology_in_one_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.topogen import streams_for, topology_yaml

    streams, groups = topology_yaml(streams_for(20_000))
    text = streams + groups.replace("# generated by bench/topogen.py\n", "")
    assert len(text.encode()) * 4 < loader.MAX_FILE_BYTES
    monkeypatch.setattr(loader, "MAX_VALUES", loader.MAX_VALUES // 4)  # fits four times over
    diags: list[Any] = []
    gc.disable()  # as the CLI runs; halves the time of this test
    try:
        root, ok = read_yaml("t.yaml", text, diags)
    finally:
        gc.enable()
    assert ok and diags == []
    assert isinstance(root, Map)
    groups_node = root.entries["consumer_groups"].value
    assert isinstance(groups_node, Map) and len(groups_node.entries) == 16_000


# --- how plain values are read ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("false", False),
        ("", None),
        ("~", None),
        ("null", None),
        ("NULL", None),
        ("0", 0),
        ("42", 42),
        ("-1", -1),
        ("+5", 5),
        ("1.5", 1.5),
        ("1.5e+3", 1500.0),
        # text: YAML 1.1 and YAML 1.2 disagree on these, or no setting wants them as numbers
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("True", "True"),
        ("FALSE", "FALSE"),
        ("010", "010"),
        ("09", "09"),
        ("0x10", "0x10"),
        ("0o17", "0o17"),
        ("0b101", "0b101"),
        ("1_000", "1_000"),
        ("1:30", "1:30"),
        ("1e5", "1e5"),
        ("٣", "٣"),
        ("１２", "１２"),
        ("2026-01-31", "2026-01-31"),
        ("=", "="),
    ],
)
def test_plain_values_mean_the_same_in_yaml_1_1_and_1_2(text: str, value: object) -> None:
    read = plain_value(text)
    assert read == value and type(read) is type(value)


def test_a_number_too_long_to_convert_stays_text() -> None:
    assert plain_value("9" * 5000) == "9" * 5000


def test_yes_and_on_are_text_in_text_settings() -> None:
    text = "streams:\n  S:\n    description: yes\n  T:\n    description: on\n"
    topology, diags = parse_sources([("t.yaml", text)])
    assert diags == [] and topology is not None
    assert topology.streams["S"].config["description"] == "yes"
    assert topology.streams["T"].config["description"] == "on"


def test_true_and_false_are_booleans() -> None:
    text = "streams:\n  S:\n    deny_delete: true\n    deny_purge: false\n"
    topology, diags = parse_sources([("t.yaml", text)])
    assert diags == [] and topology is not None
    config = topology.streams["S"].config
    assert config["deny_delete"] is True and config["deny_purge"] is False


@pytest.mark.parametrize("empty", ["", " ~", " null", " Null", " NULL"])
def test_null_spellings_still_mean_no_value(empty: str) -> None:
    _, diags = parse_sources([("t.yaml", f"streams:\n  S:\n    max_age:{empty}\n")])
    assert [d.message.split(" (")[0] for d in diags] == ["max_age has no value"]


def test_counts_still_take_digit_groups() -> None:
    text = "streams:\n  S:\n    max_msgs: 1_000_000\n    max_bytes: 010\n"
    topology, diags = parse_sources([("t.yaml", text)])
    assert diags == [] and topology is not None
    assert topology.streams["S"].config["max_msgs"] == 1_000_000
    assert topology.streams["S"].config["max_bytes"] == 10  # not octal 8


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
        st.from_regex(r"\A[-+.0-9a-zA-Z_:~]{1,8}\Z"),
    )
)
def test_text_written_by_yaml_dump_reads_back_as_the_same_text(value: str) -> None:
    # import writes YAML with PyYAML's dumper, which quotes what YAML 1.1 would not read as text
    diags: list[Any] = []
    text = yaml.safe_dump({"k": value}, allow_unicode=True)  # what emit.py's dumper does
    root, ok = read_yaml("t.yaml", text, diags)
    assert ok and diags == []
    assert isinstance(root, Map)
    node = root.entries["k"].value
    assert isinstance(node, Scalar) and node.value == value


# --- the command line -------------------------------------------------------------------------

UNREACHABLE = "nats://127.0.0.1:1"


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["plan", "-s", UNREACHABLE],
        ["apply", "--auto-approve", "-s", UNREACHABLE],
    ],
    ids=["validate", "plan", "apply"],
)
def test_a_dangling_topology_file_fails_every_command_before_it_connects(
    tmp_path: Path, command: list[str]
) -> None:
    topo = tmp_path / "topology"
    topo.mkdir()
    (topo / "streams.yaml").write_text(STREAMS)
    (topo / "consumer_groups.yaml").symlink_to("missing.yaml")
    proc = run_cli(*command, "--topology", "topology", cwd=tmp_path)
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr
    expected = (
        "cannot read topology/consumer_groups.yaml: it is a dangling symlink to 'missing.yaml'"
    )
    assert expected in proc.stderr
    # it stopped at the topology: no attempt to reach the server, no plan
    assert "127.0.0.1:1" not in proc.stderr + proc.stdout
    assert "destroy" not in proc.stdout


def test_an_oversized_topology_file_is_refused_at_once_by_the_cli(tmp_path: Path) -> None:
    topo = tmp_path / "topology"
    topo.mkdir()
    with (topo / "big.yaml").open("wb") as f:  # just over the limit, sparse
        f.truncate(loader.MAX_FILE_BYTES + 1)
    proc = run_cli("validate", "--topology", "topology", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == (
        "Error: topology/big.yaml is 16,777,217 bytes; "
        "the limit is 16,777,216 bytes per topology file\n"
    )


def test_yaml_1_1_booleans_fail_validate_with_their_place(tmp_path: Path) -> None:
    topo = tmp_path / "topology"
    topo.mkdir()
    (topo / "s.yaml").write_text(STREAMS + "    deny_delete: yes\n")
    proc = run_cli("validate", "--topology", "topology", cwd=tmp_path)
    assert proc.returncode == 1
    assert "topology/s.yaml:4:18: error: deny_delete must be true or false, not 'yes'" in (
        proc.stderr
    )


def test_max_age_accepts_unlimited() -> None:
    for value in ("unlimited", "-1", "0"):
        topology, diags = parse_sources([("t.yaml", f"streams:\n  S:\n    max_age: {value}\n")])
        assert diags == [] and topology is not None
        assert topology.streams["S"].config["max_age"] == 0


def test_unquoted_timestamps_keep_their_text() -> None:
    text = dedent("""\
        streams:
          S: {subjects: [s.>]}
        consumer_groups:
          g:
            stream: S
            deliver_policy: by_start_time
            opt_start_time: 2026-01-31T12:00:00Z
        """)
    topology, diags = parse_sources([("t.yaml", text)])
    assert diags == [] and topology is not None
    assert topology.consumers[("S", "g")].config["opt_start_time"] == "2026-01-31T12:00:00Z"


# --- dump_topology (import) -------------------------------------------------------------------


def _wire(
    topology: model.Topology,
) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
    streams = [dict(s.config) for s in topology.streams.values()]
    consumers = [(c.stream, dict(c.config)) for c in topology.consumers.values()]
    return streams, consumers


def test_repository_topology_round_trips_through_dump() -> None:
    topology = load_topology(REPO / "topology")
    streams, consumers = _wire(topology)
    text = dump_topology(streams, consumers)
    assert "max_bytes: 10GB" in text and "max_age: 7d" in text
    assert "retry_delays: [2s, 4s, 8s]" in text
    assert model.MANAGED_BY_KEY not in text
    assert text.startswith("# yaml-language-server: $schema=")
    again, diags = parse_sources([("x.yaml", text)])
    assert diags == [] and again is not None
    assert _wire(again) == (streams, consumers)


def test_dump_drops_server_metadata_and_unknown_fields() -> None:
    stream = {
        "name": "S",
        "subjects": ["s.>"],
        "max_bytes": 1536,
        "max_msgs": -1,
        "metadata": {"_nats.req.level": "0", model.MANAGED_BY_KEY: "jelmore-infra", "team": "x"},
        "future_field": True,
    }
    text = dump_topology([stream], [])
    assert "_nats" not in text and "managed-by" not in text
    assert "team: x" in text and "max_bytes: 1536" in text and "max_msgs: unlimited" in text
    assert "#   stream.S: future_field" in text


def test_human_sizes_are_exact() -> None:
    assert human_size(10_000_000_000) == "10GB"
    assert human_size(2**30) == "1GiB"
    assert human_size(512 * 1024) == "512KiB"
    assert human_size(1536) == 1536
    assert human_size(-1) == -1
    assert human_size(0) == 0


durations = st.integers(min_value=1, max_value=10**6).map(lambda n: n * 100_000_000)
sizes = st.one_of(
    st.integers(min_value=1, max_value=2**40),
    st.sampled_from([10**9, 10 * 10**9, 2**30, 512 * 1024, 1000, 1024]),
)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
meta_keys = st.from_regex(r"\A[a-z][a-z0-9_-]{0,10}\Z")


@st.composite
def topologies(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
    streams: list[dict[str, Any]] = []
    consumers: list[tuple[str, dict[str, Any]]] = []
    for i in range(draw(st.integers(min_value=1, max_value=3))):
        name = f"S{i}"
        cfg: dict[str, Any] = {"name": name, "subjects": [f"s{i}.>"]}
        if draw(st.booleans()):
            cfg["max_age"] = draw(durations)
        if draw(st.booleans()):
            cfg["max_bytes"] = draw(sizes)
        if draw(st.booleans()):
            cfg["max_msgs"] = draw(st.integers(min_value=-1, max_value=10**9))
        if draw(st.booleans()):
            cfg["storage"] = draw(st.sampled_from(["file", "memory"]))
        if draw(st.booleans()):
            cfg["description"] = draw(texts)
        meta = draw(st.dictionaries(meta_keys, texts, max_size=2))
        cfg["metadata"] = {model.MANAGED_BY_KEY: model.MANAGED_BY_VALUE, **meta}
        streams.append(cfg)
        for j in range(draw(st.integers(min_value=0, max_value=2))):
            c: dict[str, Any] = {"durable_name": f"g{i}_{j}"}
            c["filter_subjects"] = [f"s{i}.g{j}.>"]
            if draw(st.booleans()):
                c["ack_policy"] = "explicit"
                c["ack_wait"] = draw(durations)
            if draw(st.booleans()):
                c["max_deliver"] = draw(st.integers(min_value=1, max_value=10))
            c_meta: dict[str, str] = {model.MANAGED_BY_KEY: model.MANAGED_BY_VALUE}
            if c.get("ack_policy") == "explicit" and draw(st.booleans()):
                delays = draw(st.lists(durations, min_size=1, max_size=3))
                c_meta[model.META_RETRY_DELAYS] = ",".join(_fmt(d) for d in delays)
            c["metadata"] = c_meta
            consumers.append((name, c))
    return streams, consumers


def _fmt(ns: int) -> str:
    from jelmore_infra.units import format_duration

    return format_duration(ns)


@settings(max_examples=60, deadline=None)
@given(topologies())
def test_dump_then_parse_gives_back_the_same_wire_configs(
    data: tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]],
) -> None:
    streams, consumers = data
    text = dump_topology(streams, consumers)
    topology, diags = parse_sources([("x.yaml", text)])
    assert diags == [], text
    assert topology is not None
    assert _wire(topology) == (streams, consumers)
