"""The compiled methods of dataclasses, kept between runs of the command line.

Python writes the methods of each dataclass (``__init__``, ``__repr__``, ``__eq__``, a frozen
class's ``__setattr__`` and ``__delattr__``, ...) as source text when the class is created and
compiles each text with the builtin ``exec``. A module's own code is compiled once and kept in
its ``.pyc`` file; these texts are compiled again in every process. ``apply`` creates 66
dataclasses of this package and 44 of nats-py: compiling their methods took 45–55 ms of its
~0.21 s of imports on the 2-core benchmark machine (measured by timing the imports with and
without a filled cache, three runs each).

:func:`install` gives the :mod:`dataclasses` module an ``exec`` of its own (a module attribute,
found before the builtin): each text is compiled once, the code objects are kept in a file
beside this module's ``.pyc`` file, and later runs execute the kept code. The functions made are
the same: the same text compiled the same way as the builtin compiles it there (file name
``<string>``, no ``__future__`` flags: :mod:`dataclasses` imports none). Only the command line
installs it, never an import of the package, so an application's own dataclasses are left
alone. Installed only on the Python versions whose :mod:`dataclasses` module was read for this
(3.11 to 3.13: one ``exec(text, globals, namespace)`` call makes each method).

The file is read at the first dataclass, written at exit only when a text was new, and never
under ``PYTHONDONTWRITEBYTECODE`` (``python -B``); a file that cannot be read, or was written by
another Python, is ignored. ``python -m jelmore_infra.cli.codecache`` fills it with every
dataclass of the package and of nats-py whatever ``PYTHONDONTWRITEBYTECODE`` says, as
``python -m compileall`` writes ``.pyc`` files; ``make install`` runs it.
"""

from __future__ import annotations

import atexit
import marshal
import os
import sys
from importlib.util import MAGIC_NUMBER as _MAGIC
from types import CodeType
from typing import Any

#: The Python versions whose ``dataclasses`` module was read for this (see the module doc).
CHECKED_VERSIONS = ((3, 11), (3, 12), (3, 13))
#: Most texts kept in the file: past this, only the texts of the last run are kept.
MAX_ENTRIES = 4096
_BUILTIN_EXEC = exec


class CodeCache:
    """Source text → its compiled code, read from and written back to one file."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        #: Read at the first text (a command that creates no dataclass reads nothing).
        self._codes: dict[str, CodeType] | None = None
        self.used: set[str] = set()
        self.misses = 0
        self.hits = 0

    @property
    def codes(self) -> dict[str, CodeType]:
        if self._codes is None:
            self._codes = _read(self.path) if self.path is not None else {}
        return self._codes

    def exec(self, source: Any, globals_: Any = None, locals_: Any = None, /) -> None:
        """``exec`` as :mod:`dataclasses` calls it, with each source text compiled once."""
        if type(source) is not str:
            _BUILTIN_EXEC(source, globals_, locals_)
            return
        code = self.codes.get(source)
        if type(code) is not CodeType:
            code = compile(source, "<string>", "exec", dont_inherit=True)
            self.codes[source] = code
            self.misses += 1
        else:
            self.hits += 1
        self.used.add(source)
        _BUILTIN_EXEC(code, globals_, locals_)

    def save(self, *, asked: bool = False) -> None:
        """Write the file when a text was new, never under ``PYTHONDONTWRITEBYTECODE``; or, when
        ``asked`` (:func:`fill`), in any case."""
        if self.path is None or not (asked or (self.misses and not sys.dont_write_bytecode)):
            return
        codes = self.codes
        if len(codes) > MAX_ENTRIES:
            codes = {text: codes[text] for text in self.used}
        try:
            data = _MAGIC + marshal.dumps(codes)
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            partial = f"{self.path}.{os.getpid()}.tmp"
            with open(partial, "wb") as fh:
                fh.write(data)
            os.replace(partial, self.path)
        except (OSError, ValueError):
            pass  # a cache that cannot be written only costs the next run its compiling


def _read(path: str) -> dict[str, CodeType]:
    """The kept codes; empty when the file is missing, unreadable or of another Python."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if not data.startswith(_MAGIC):
            return {}
        codes = marshal.loads(data[len(_MAGIC) :])
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    # (each code is checked when it is used: checking all here would cost more than reading)
    return codes if isinstance(codes, dict) else {}


def default_path() -> str | None:
    """Beside this module's ``.pyc`` file (``__pycache__``, or ``PYTHONPYCACHEPREFIX``)."""
    tag = sys.implementation.cache_tag
    if tag is None:
        return None
    from importlib.util import cache_from_source

    try:
        pyc = cache_from_source(__file__)
    except (NotImplementedError, ValueError):
        return None
    return os.path.join(os.path.dirname(pyc), f"dataclass-methods.{tag}.marshal")


_installed: CodeCache | None = None


def _compile_through(cache: CodeCache) -> CodeCache:
    """Have :mod:`dataclasses` compile its method texts through ``cache``."""
    import dataclasses

    dataclasses.exec = cache.exec  # type: ignore[attr-defined]
    return cache


def install(path: str | None = None) -> CodeCache | None:
    """Compile dataclass methods through a :class:`CodeCache` (once per process); ``None``
    on a Python version whose :mod:`dataclasses` module was not checked."""
    global _installed
    if _installed is not None:
        return _installed
    if sys.version_info[:2] not in CHECKED_VERSIONS:
        return None
    cache = _compile_through(CodeCache(path if path is not None else default_path()))
    atexit.register(cache.save)
    _installed = cache
    return cache


def fill() -> int:
    """Create every dataclass of this package and of nats-py and write the file (see the
    module doc); the number of texts kept."""
    import importlib
    import pkgutil

    import jelmore_infra

    cache = CodeCache(default_path())
    if cache.path is None:
        return 0
    _compile_through(cache)
    names = [m.name for m in pkgutil.walk_packages(jelmore_infra.__path__, "jelmore_infra.")]
    for name in ["nats", "nats.js.api", "nats.js.kv", "nats.js.object_store", *names]:
        try:
            importlib.import_module(name)
        except Exception:  # a module that cannot be imported here has no dataclass to keep
            continue
    cache.save(asked=True)
    return len(cache.codes)


if __name__ == "__main__":
    print(f"kept the compiled methods of dataclasses: {fill()} texts")
