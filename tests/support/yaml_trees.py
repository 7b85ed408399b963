"""Located node trees compared field by field (value, raw text, quoting, file, line, column)."""

from __future__ import annotations

import math
from typing import Any

from jelmore_infra.topology.nodes import LNode, Map, Scalar, Seq


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def tree_difference(a: LNode | None, b: LNode | None, path: str = "") -> str | None:
    """Where two trees differ (``None``: they are the same)."""
    if a is None or b is None:
        return None if a is b else f"{path}: {a!r} != {b!r}"
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} != {type(b).__name__}"
    if (a.file, a.line, a.col) != (b.file, b.line, b.col):
        return f"{path}: at {a.loc} != at {b.loc}"
    if isinstance(a, Scalar):
        assert isinstance(b, Scalar)
        if not same_value(a.value, b.value) or a.raw != b.raw or a.quoted != b.quoted:
            return f"{path}: {a!r} != {b!r}"
        return None
    if isinstance(a, Seq):
        assert isinstance(b, Seq)
        if len(a.items) != len(b.items):
            return f"{path}: {len(a.items)} items != {len(b.items)}"
        for i, (x, y) in enumerate(zip(a.items, b.items, strict=True)):
            found = tree_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    assert isinstance(a, Map) and isinstance(b, Map)
    if list(a.entries) != list(b.entries):
        return f"{path}: keys {list(a.entries)} != {list(b.entries)}"
    for key, ea in a.entries.items():
        eb = b.entries[key]
        if (ea.file, ea.line, ea.col) != (eb.file, eb.line, eb.col):
            return f"{path}.{key}: key at {ea.key_loc} != at {eb.key_loc}"
        found = tree_difference(ea.value, eb.value, f"{path}.{key}")
        if found:
            return found
    return None
