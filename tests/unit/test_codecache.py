"""The command line keeps the compiled methods of dataclasses between runs (cli/codecache.py).

The methods made from kept code must be the same functions as the builtin ``exec`` makes; a
second process must compile nothing; the file must never be trusted blindly nor written where
Python would not write bytecode; and only the command line, never an import of the package,
changes how :mod:`dataclasses` compiles.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jelmore_infra.cli import codecache

ROOT = Path(__file__).resolve().parents[2]

#: A class using what dataclasses generate code for: defaults, a factory, frozen, slots, order.
CLASS_SOURCE = """
from __future__ import annotations
from dataclasses import dataclass, field

@dataclass(frozen=True, slots=True, order=True)
class Sample:
    name: str
    count: int = 3
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict, compare=False)
"""

METHODS = ("__init__", "__repr__", "__eq__", "__lt__", "__setattr__", "__delattr__", "__hash__")


def make_class() -> type[Any]:
    """The class made anew, as importing a module that defines it would make it."""
    module = types.ModuleType("codecache_sample")
    sys.modules[module.__name__] = module
    try:
        exec(CLASS_SOURCE, module.__dict__)
    finally:
        del sys.modules[module.__name__]
    cls: type[Any] = module.Sample
    return cls


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[codecache.CodeCache]:
    """A cache on a file of its own, used by :mod:`dataclasses` for the test only (with
    bytecode written, whatever ``PYTHONDONTWRITEBYTECODE`` the test run has)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    made = codecache.CodeCache(str(tmp_path / "methods.marshal"))
    dataclasses.exec = made.exec  # type: ignore[attr-defined]
    try:
        yield made
    finally:
        del dataclasses.exec  # type: ignore[attr-defined]


def code_of(fn: Any) -> tuple[Any, ...]:
    c = fn.__code__
    return (c.co_code, c.co_consts, c.co_names, c.co_varnames, c.co_flags, c.co_filename)


def test_methods_made_from_kept_code_are_those_the_builtin_exec_makes(
    cache: codecache.CodeCache,
) -> None:
    del dataclasses.exec  # type: ignore[attr-defined]
    plain = make_class()
    dataclasses.exec = cache.exec  # type: ignore[attr-defined]
    compiled = make_class()
    cache.save()
    kept = codecache.CodeCache(cache.path)
    dataclasses.exec = kept.exec  # type: ignore[attr-defined]
    reused = make_class()

    assert cache.misses > 0
    assert kept.misses == 0 and kept.hits == cache.misses
    for name in METHODS:
        assert code_of(getattr(compiled, name)) == code_of(getattr(plain, name)), name
        assert code_of(getattr(reused, name)) == code_of(getattr(plain, name)), name
        assert getattr(reused, name).__annotations__ == getattr(plain, name).__annotations__
    a, b = reused("a"), reused("b", 1)
    assert (a.count, a.tags, a.extra) == (3, (), {})
    assert a < b and a == reused("a", extra={"x": 1}) and hash(a) == hash(reused("a"))
    assert repr(b) == "Sample(name='b', count=1, tags=(), extra={})"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.count = 4


def test_a_damaged_file_or_one_of_another_python_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "methods.marshal"
    for content in (b"", b"garbage", b"\x00\x00\r\n" + b"\xff" * 40, codecache._MAGIC + b"\x01"):
        path.write_bytes(content)
        assert codecache.CodeCache(str(path)).codes == {}


def test_an_entry_that_is_not_code_is_compiled_again(cache: codecache.CodeCache) -> None:
    make_class()
    text = next(iter(cache.codes))
    cache.codes[text] = "not code"  # type: ignore[assignment]
    misses = cache.misses
    make_class()
    assert cache.misses == misses + 1
    assert isinstance(cache.codes[text], type(compile("", "", "exec")))


def test_nothing_is_written_when_no_text_was_new_or_bytecode_is_not_written(
    cache: codecache.CodeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cache.path is not None
    cache.save()
    assert not os.path.exists(cache.path)  # nothing compiled yet
    make_class()
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cache.save()
    assert not os.path.exists(cache.path)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    cache.save()
    assert os.path.exists(cache.path)


def test_past_the_cap_only_the_texts_of_this_run_are_kept(cache: codecache.CodeCache) -> None:
    stale = compile("pass", "<string>", "exec")
    cache.codes.update({f"# old text {n}": stale for n in range(codecache.MAX_ENTRIES)})
    make_class()
    cache.save()
    assert set(codecache.CodeCache(cache.path).codes) == cache.used


PROCESS = """
import sys
from jelmore_infra.cli import codecache
cache = codecache.install(sys.argv[1])
import jelmore_infra.plan, jelmore_infra.impact
print(cache.misses, cache.hits)
"""


def run_process(path: Path, *, write_bytecode: bool = True) -> tuple[int, int]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", PROCESS, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
    )
    misses, hits = out.stdout.split()
    return int(misses), int(hits)


def test_the_next_process_compiles_no_dataclass_method(tmp_path: Path) -> None:
    path = tmp_path / "methods.marshal"
    assert run_process(path, write_bytecode=False)[0] > 0
    assert not path.exists()
    misses, _ = run_process(path)
    assert misses > 0 and path.exists()
    assert run_process(path) == (0, misses)


def test_filling_the_file_covers_every_dataclass_of_the_command_line(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    fill = subprocess.run(
        [sys.executable, "-m", "jelmore_infra.cli.codecache"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
    )
    assert "kept the compiled methods of dataclasses" in fill.stdout
    (path,) = tmp_path.rglob("dataclass-methods.*.marshal")
    probe = (
        "import sys\n"
        "from jelmore_infra.cli import codecache\n"
        "cache = codecache.install()\n"
        "import jelmore_infra.apply, jelmore_infra.workflow, jelmore_infra.runtime.instance\n"
        "import jelmore_infra.cli.apply_cmd, jelmore_infra.cli.plan_cmd\n"
        "print(cache.path, cache.misses, cache.hits)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    where, misses, hits = out.stdout.split()
    assert Path(where) == path
    assert int(misses) == 0 and int(hits) > 100


def test_importing_the_package_leaves_dataclasses_as_python_made_it() -> None:
    code = (
        "import dataclasses\n"
        "import jelmore_infra.cli.main, jelmore_infra.runtime, jelmore_infra.apply\n"
        "print(hasattr(dataclasses, 'exec'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"


def test_the_command_line_compiles_through_the_cache() -> None:
    code = (
        "import sys, dataclasses\n"
        "from jelmore_infra.cli.main import main\n"
        "sys.argv = ['jelmore-infra', '--version']\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print(getattr(dataclasses, 'exec', None).__qualname__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "CodeCache.exec"


def test_an_unchecked_python_version_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codecache, "CHECKED_VERSIONS", ())
    monkeypatch.setattr(codecache, "_installed", None)
    assert codecache.install() is None
    assert not hasattr(dataclasses, "exec")
