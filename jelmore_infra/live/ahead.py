"""The live read of ``plan``, run in a child process while the parent loads the topology.

Loading and checking a large topology is Python work, and so is most of the live read (decoding
thousands of replies): in one process they take turns on one core under the GIL, so running
them in two threads gains nothing. :class:`ReadAhead` forks a child that connects, reads (only
what the ``--target`` options need, which come from the command line, not the topology) and
hands the :class:`~jelmore_infra.model.LiveState` back through a pipe, while the parent loads
the topology on its own core.

The child only reads: nothing is written to the server before the topology is valid. A
topology error wins: the parent leaves the block with it, and the child is killed and reaped
unseen, whatever its connection did. A connection error of the child is raised in the parent,
as the same exception, only when the parent asks for the result. Every way out of the ``with``
block kills and reaps the child, and on Linux the child also dies with its parent.

Where ``os.fork`` is missing, :class:`ReadAhead` reads nothing ahead and :meth:`ReadAhead.result`
reads in the calling process.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import signal
import sys
from collections.abc import Collection
from typing import Any

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import JelmoreError
from jelmore_infra.model import LiveState

#: Exit status of a child that wrote its answer (any other status: it died before answering).
_ANSWERED = 0


class ReadAhead:
    """Fork a child that reads the live state; :meth:`result` waits for it (see the module)."""

    def __init__(self, settings: ConnectionSettings, streams: Collection[str] | None) -> None:
        self._settings = settings
        self._streams = None if streams is None else sorted(streams)
        self._pid: int | None = None
        self._fd: int | None = None

    def __enter__(self) -> ReadAhead:
        if not hasattr(os, "fork"):
            return self
        sys.stdout.flush()
        sys.stderr.flush()
        read_fd, write_fd = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_fd)
            _child(write_fd, parent, self._settings, self._streams)
        os.close(write_fd)
        self._pid, self._fd = pid, read_fd
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def result(self) -> LiveState:
        """The live state the child read; raises the child's error (e.g. cannot connect)."""
        if self._pid is None:
            return _read(self._settings, self._streams)
        assert self._fd is not None
        chunks: list[bytes] = []
        while chunk := os.read(self._fd, 1 << 20):
            chunks.append(chunk)
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        self._stop()
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != _ANSWERED or not chunks:
            raise RuntimeError("the live read ended without an answer")
        ok, value = pickle.loads(b"".join(chunks))
        if not ok:
            raise value
        assert isinstance(value, LiveState)
        return value

    def _stop(self) -> None:
        """Kill and reap the child if it still runs; close the pipe."""
        if self._pid is not None:
            pid, self._pid = self._pid, None
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # pragma: no cover - it is reaped only below
                pass
            os.waitpid(pid, 0)
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _read(settings: ConnectionSettings, streams: Collection[str] | None) -> LiveState:
    import asyncio

    from jelmore_infra.live.jsapi import JetStreamAPI
    from jelmore_infra.live.read import read_live

    async def read() -> LiveState:
        async with await JetStreamAPI.connect(settings) as api:
            return await read_live(api, streams=streams)

    return asyncio.run(read())


def _child(
    fd: int, parent: int, settings: ConnectionSettings, streams: Collection[str] | None
) -> None:
    """Read, write ``(ok, value)`` to ``fd``, exit without running the parent's clean-up."""
    status = 1
    try:
        # Ctrl-C reaches the whole process group: the parent decides, and kills this child.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _die_with_parent(parent)
        answer: tuple[bool, Any]
        try:
            answer = (True, _read(settings, streams))
        except Exception as exc:
            answer = (False, _portable(exc))
        data = _dumps(answer)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        status = _ANSWERED
    except BaseException:
        pass  # the parent reports a child that did not answer
    finally:
        os._exit(status)


class _Pickler(pickle.Pickler):
    """Pickles the model's dataclasses as calls of their constructors, which unpickle faster
    than the default (a ``__setstate__`` call per object); everything else as usual."""

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        try:
            names = _CONSTRUCTED[cls]
        except KeyError:
            names = _CONSTRUCTED[cls] = _constructor_fields(cls)
        if names is None:
            return NotImplemented
        return cls, tuple(getattr(obj, name) for name in names)


#: Class → the fields its constructor takes (``None``: pickled as usual); see the pickler.
_CONSTRUCTED: dict[type, tuple[str, ...] | None] = {}


def _constructor_fields(cls: type) -> tuple[str, ...] | None:
    """The fields ``cls``'s constructor takes, in order, when that rebuilds an instance of a
    dataclass of :mod:`jelmore_infra.model` exactly (``None``: pickle it as usual)."""
    if cls.__module__ != LiveState.__module__ or not dataclasses.is_dataclass(cls):
        return None
    if hasattr(cls, "__post_init__"):
        return None  # its constructor may change what it is given
    fields = dataclasses.fields(cls)
    if not all(f.init for f in fields):
        return None
    return tuple(f.name for f in fields)


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling; else one that the CLI reports with the same line.

    (An exception whose ``__init__`` takes other arguments than its message, such as
    :class:`~jelmore_infra.errors.JetStreamAPIError`, cannot be rebuilt from its pickle.)
    """
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        if isinstance(exc, JelmoreError):
            return JelmoreError(str(exc))  # `Error: <message>`, as for every JelmoreError
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    exc.__traceback__ = None
    return exc


def _die_with_parent(parent: int) -> None:
    """On Linux, have the kernel kill this child when its parent dies (a SIGKILLed plan)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl: the read is bounded
        pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
