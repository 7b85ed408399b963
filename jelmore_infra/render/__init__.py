"""Views of a plan: for a terminal (``human``), for machines and saved plans (``json``) and for
pull-request comments (``markdown``), all drawn from the same :class:`~jelmore_infra.plan.Plan`
and sharing one value formatter (``values``), so they cannot disagree. ``controls`` makes text
from the server safe for a terminal (control characters become visible escapes); every
human-facing output uses it. ``impact`` words the plan's data-impact records, once for every
view.

Every renderer is pure: it returns a string (or a rich ``Text``) and never writes anywhere; the
command line owns the console and the files. Names below are imported lazily, so importing
``jelmore_infra.render.json`` does not pull in rich.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jelmore_infra.render.controls import escape_controls
    from jelmore_infra.render.human import render_plan, render_plan_text
    from jelmore_infra.render.impact import impact_text
    from jelmore_infra.render.json import load_plan_json, plan_document, render_plan_json
    from jelmore_infra.render.markdown import render_plan_markdown
    from jelmore_infra.render.values import format_change, format_value

_WHERE = {
    "escape_controls": "controls",
    "impact_text": "impact",
    "render_plan": "human",
    "render_plan_text": "human",
    "load_plan_json": "json",
    "plan_document": "json",
    "render_plan_json": "json",
    "render_plan_markdown": "markdown",
    "format_change": "values",
    "format_value": "values",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "escape_controls",
    "format_change",
    "format_value",
    "impact_text",
    "load_plan_json",
    "plan_document",
    "render_plan",
    "render_plan_json",
    "render_plan_markdown",
    "render_plan_text",
]
