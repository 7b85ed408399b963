"""Writing topology YAML from wire-form configs (for ``jelmore-infra import``).

:func:`dump_topology` takes stream and consumer configs as the server reports them, with server
defaults already removed, and writes a topology file a person can read and review: settings in the
field table's order, durations and sizes with human units (exact: ``7d``, ``10GB``, ``1GiB``, else
the plain number), the server's ``_nats.*`` metadata and the ownership marker left out, and a
group's ``jelmore.*`` metadata turned back into its ``jelmore:`` block. Reading the text back gives
the same wire configs.

Names and values may hold control characters (the server accepts a stream called
``EVIL\\x1b[2J``). Such strings are written double-quoted with YAML escapes (``"EVIL\\x1b[2J"``),
so the file reads back exactly, holds no raw control character and is safe to print on a
terminal; comments name them with the same visible escapes. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from jelmore_infra import fields as F
from jelmore_infra import model
from jelmore_infra.render.controls import escape_controls, escape_controls_keeping_lines
from jelmore_infra.units import BYTES_PER_UNIT, format_duration, parse_duration

SCHEMA_MODELINE = "# yaml-language-server: $schema=../jelmore_infra/topology/topology.schema.json"
HEADER = (
    f"{SCHEMA_MODELINE}\n"
    "# Imported from a live server by `jelmore-infra import`.\n"
    "# Review it before committing: it holds every setting that differs from the server's\n"
    "# defaults. Import changed nothing on the server: `jelmore-infra plan` against it shows\n"
    "# no changes, except the adoption of resources jelmore-infra did not create (an update\n"
    "# in place that only marks them as managed by jelmore-infra), made when you apply it.\n"
)
_SIZE_UNITS = sorted(((u, f) for u, f in BYTES_PER_UNIT.items() if u != "b"), key=lambda uf: -uf[1])
_SIZE_NAMES = {
    "kb": "KB",
    "mb": "MB",
    "gb": "GB",
    "tb": "TB",
    "pb": "PB",
    "kib": "KiB",
    "mib": "MiB",
    "gib": "GiB",
    "tib": "TiB",
    "pib": "PiB",
}


class _Flow(list[Any]):
    """A list written in flow style: ``[2s, 4s, 8s]``."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # indent block lists under their key, as people write them
        super().increase_indent(flow, False)


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Double quotes are the only YAML style that can escape every control character; the
    # emitter escapes most of them, and dump_topology escapes the few it would leave raw.
    style = None if data.isprintable() else '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(_Flow, _represent_flow)
_Dumper.add_representer(str, _represent_str)


def human_size(n: int) -> int | str:
    """``10GB``/``1GiB`` when a unit divides the size exactly, else the integer (``-1`` stays)."""
    if n <= 0:
        return n
    for unit, factor in _SIZE_UNITS:
        if n % factor == 0:
            return f"{n // factor}{_SIZE_NAMES[unit]}"
    return n


def _value(fld: F.Field, value: Any) -> Any:
    kind = fld.kind
    k = F.ValueKind
    if kind is k.DURATION and isinstance(value, int) and not isinstance(value, bool):
        return format_duration(value)
    if kind is k.DURATION_LIST and isinstance(value, list):
        return _Flow(format_duration(v) if isinstance(v, int) else v for v in value)
    if kind in (k.SIZE, k.COUNT) and value == -1 and fld.unlimited:
        return "unlimited"
    if kind is k.SIZE and isinstance(value, int) and not isinstance(value, bool):
        return human_size(value)
    if kind is k.OBJECT and isinstance(value, Mapping):
        return _settings(fld.sub_fields, value, ())
    if kind is k.OBJECT_LIST and isinstance(value, list):
        return [_settings(fld.sub_fields, v, ()) if isinstance(v, Mapping) else v for v in value]
    return value


def _settings(
    table: Sequence[F.Field], config: Mapping[str, Any], leave_out: tuple[str, ...]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fld in table:
        if fld.name in leave_out or fld.name not in config:
            continue
        value = config[fld.name]
        if fld.kind is F.ValueKind.METADATA:
            value = _user_metadata(value)
            if not value:
                continue
        out[fld.name] = _value(fld, value)
    return out


def _user_metadata(meta: Any) -> dict[str, str]:
    if not isinstance(meta, Mapping):
        return {}
    return {
        k: v
        for k, v in meta.items()
        if not k.startswith((model.JELMORE_META_PREFIX, model.SERVER_META_PREFIX))
    }


def _jelmore_block(meta: Any) -> dict[str, Any]:
    if not isinstance(meta, Mapping):
        return {}
    block: dict[str, Any] = {}
    delays = meta.get(model.META_RETRY_DELAYS)
    if isinstance(delays, str) and delays.strip():
        parts = [p.strip() for p in delays.split(",")]
        try:
            block["retry_delays"] = _Flow(format_duration(parse_duration(p)) for p in parts)
        except ValueError:
            block["retry_delays"] = _Flow(parts)
    dead: dict[str, str] = {}
    if isinstance(meta.get(model.META_DEAD_LETTER_STREAM), str):
        dead["stream"] = meta[model.META_DEAD_LETTER_STREAM]
    if isinstance(meta.get(model.META_DEAD_LETTER_SUBJECT), str):
        dead["subject"] = meta[model.META_DEAD_LETTER_SUBJECT]
    if dead:
        block["dead_letter"] = dead
    return block


def _unknown(table: Mapping[str, F.Field], config: Mapping[str, Any], skip: set[str]) -> list[str]:
    return sorted(k for k in config if k not in table and k not in skip)


def dump_topology(
    streams: Sequence[Mapping[str, Any]],
    consumers: Sequence[tuple[str, Mapping[str, Any]]],
    kv_buckets: Sequence[tuple[str, Mapping[str, Any]]] = (),
    object_stores: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> str:
    """Topology YAML for wire-form stream configs, ``(stream, consumer config)`` pairs and
    ``(bucket name, bucket settings)`` pairs."""
    doc: dict[str, Any] = {}
    dropped: list[str] = []
    if streams:
        section: dict[str, Any] = {}
        for cfg in streams:
            name = str(cfg["name"])
            section[name] = _settings(F.STREAM_FIELDS, cfg, ("name",))
            extra = _unknown(F.STREAM_FIELD_MAP, cfg, set())
            if extra:
                dropped.append(f"{model.stream_address(name)}: {', '.join(extra)}")
        doc["streams"] = section
    if consumers:
        groups: dict[str, Any] = {}
        for stream, cfg in consumers:
            name = str(cfg.get("durable_name") or cfg.get("name"))
            group: dict[str, Any] = {"stream": stream}
            group.update(_settings(F.CONSUMER_FIELDS, cfg, ("name", "durable_name")))
            block = _jelmore_block(cfg.get("metadata"))
            if block:
                group["jelmore"] = block
            groups[name] = group
            extra = _unknown(F.CONSUMER_FIELD_MAP, cfg, set())
            if extra:
                dropped.append(f"{model.consumer_address(stream, name)}: {', '.join(extra)}")
        doc["consumer_groups"] = groups
    for key, table, buckets in (
        ("kv_buckets", F.KV_FIELDS, kv_buckets),
        ("object_stores", F.OBJECT_STORE_FIELDS, object_stores),
    ):
        if buckets:
            doc[key] = {name: _settings(table, cfg, F.BUCKET_DERIVED) for name, cfg in buckets}
    header = HEADER
    if dropped:
        header += "# Left out (not known to this version of jelmore-infra):\n"
        header += "".join(f"#   {escape_controls(line)}\n" for line in dropped)
    if not doc:
        return header
    body = yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    # Every string with a control character is double-quoted (_represent_str), so the few the
    # emitter leaves raw (NEL, NBSP, bidi overrides…) sit inside double quotes, where the
    # visible escapes of escape_controls are YAML escapes of the same characters.
    return header + "\n" + _space_resources(escape_controls_keeping_lines(body))


def _space_resources(body: str) -> str:
    """A blank line between resources (second-level keys), as hand-written files have."""
    lines = body.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        is_resource = (
            line.startswith("  ") and not line.startswith(("   ", "  : ")) and line.strip()
        )
        is_section = bool(line) and not line.startswith(" ")
        if (is_resource and i > 0 and not lines[i - 1].endswith(":")) or (is_section and out):
            out.append("")
        out.append(line)
    return "\n".join(out) + "\n"


__all__ = ["dump_topology", "human_size"]
