"""The real Mermaid and Graphviz parsers, run by the tests on the graphs jelmore-infra writes.

``make test`` first runs ``make diagram-parsers``: ``npm ci`` installs the npm packages pinned in
``tests/support/diagram_check/package-lock.json`` (mermaid, the library GitHub draws Mermaid
blocks with; ``@viz-js/viz``, Graphviz compiled to WebAssembly; jsdom, the window Mermaid's
label sanitiser needs) into ``.cache/diagram-parsers`` (``JELMORE_DIAGRAM_CACHE`` tells the
tests where). :func:`parse_diagrams` runs ``tests/support/diagram_check/check.mjs`` with Node.js
on a batch of diagrams and returns what each parser read, or its error.

Nothing is skipped: without Node.js or the installed packages (or with other versions than the
lock file pins), :func:`parse_diagrams` raises :class:`ParsersUnavailable`, and the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[2]
CHECK_DIR = Path(__file__).resolve().parent / "diagram_check"
SCRIPT = CHECK_DIR / "check.mjs"
CACHE_ENV = "JELMORE_DIAGRAM_CACHE"
DEFAULT_CACHE = ROOT / ".cache" / "diagram-parsers"
TIMEOUT = 300

Format = Literal["mermaid", "dot"]


class ParsersUnavailable(RuntimeError):
    """Node.js or the pinned parser packages are missing: run ``make diagram-parsers``."""


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def pinned_versions() -> dict[str, str]:
    """The packages and versions ``package.json`` pins."""
    package = json.loads((CHECK_DIR / "package.json").read_text(encoding="utf-8"))
    return dict(package["dependencies"])


def _check_install(cache: Path) -> str:
    node = shutil.which("node")
    if node is None:
        raise ParsersUnavailable("node (Node.js) is not on PATH; the graph tests need it")
    for name, version in pinned_versions().items():
        manifest = cache / "node_modules" / name / "package.json"
        if not manifest.is_file():
            raise ParsersUnavailable(
                f"{name} is not installed in {cache}: run `make diagram-parsers`"
            )
        found = json.loads(manifest.read_text(encoding="utf-8")).get("version")
        if found != version:
            raise ParsersUnavailable(
                f"{name} {found} in {cache} is not the pinned {version}: run `make diagram-parsers`"
            )
    return node


def parse_diagrams(diagrams: list[tuple[Format, str]]) -> list[dict[str, Any]]:
    """Parse each ``(format, text)``; one result per diagram, in order.

    A result is ``{"ok": False, "error": ...}`` or ``{"ok": True, ...}`` with what the parser
    read: for Mermaid ``vertices`` (``id``, ``text`` with entities decoded as a browser does,
    ``type``, ``classes``), ``edges`` (``start``, ``end``, ``text``, ``stroke``) and ``classes``;
    for DOT ``nodes`` (``name``, ``label`` as written, ``drawn``: the text in Graphviz's SVG,
    ``shape``, ``style``), ``edges`` (``tail``, ``head``, ``label``, ``drawn``, ``style``) and
    Graphviz's ``warnings``.
    """
    cache = cache_dir()
    node = _check_install(cache)
    payload = json.dumps([{"format": fmt, "text": text} for fmt, text in diagrams])
    proc = subprocess.run(
        [node, str(SCRIPT), str(cache)],
        input=payload,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise ParsersUnavailable(f"check.mjs failed ({proc.returncode}): {proc.stderr.strip()}")
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    assert len(results) == len(diagrams)
    return results


def parse_one(fmt: Format, text: str) -> dict[str, Any]:
    return parse_diagrams([(fmt, text)])[0]
