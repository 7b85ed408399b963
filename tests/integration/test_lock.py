"""The apply lock: a lease in a JetStream KV bucket (real server)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import LockError
from jelmore_infra.live.jsapi import JetStreamAPI
from jelmore_infra.live.lock import (
    ApplyLock,
    Holder,
    LockLost,
    _put,
    current_holder,
    force_unlock,
)
from tests.support import raw
from tests.support.cli import REPO, assert_clean_error, copy_topology, run_cli
from tests.support.natsserver import NatsServer


async def _api(url: str) -> JetStreamAPI:
    return await JetStreamAPI.connect(ConnectionSettings(url=url))


def _hold_lock(url: str) -> None:
    """Take the lease as another apply would, and leave it held (until its TTL)."""

    async def hold() -> None:
        api = await _api(url)
        await ApplyLock(api).acquire()
        await api.close()

    asyncio.run(hold())


async def test_second_lock_fails_naming_the_holder(nats_server: NatsServer) -> None:
    api = await _api(nats_server.url)
    try:
        first = ApplyLock(api)
        await first.acquire()
        second = ApplyLock(api)
        with pytest.raises(LockError, match=r"another apply holds the lock.*pid \d+"):
            await second.acquire()
        holder = await current_holder(api)
        assert holder is not None and holder.pid == os.getpid()
        await first.release()
        await second.acquire()
        await second.release()
        assert await current_holder(api) is None
    finally:
        await api.close()


async def test_lock_waits_up_to_the_timeout_for_the_holder(nats_server: NatsServer) -> None:
    api = await _api(nats_server.url)
    try:
        first = ApplyLock(api)
        await first.acquire()

        async def release_soon() -> None:
            await asyncio.sleep(0.5)
            await first.release()

        task = asyncio.create_task(release_soon())
        second = ApplyLock(api)
        await second.acquire(timeout=10)
        await task
        assert second.seq is not None
        await second.release()
    finally:
        await api.close()


async def test_crashed_holders_lease_expires_on_its_own(nats_server: NatsServer) -> None:
    api = await _api(nats_server.url)
    try:
        crashed = ApplyLock(api, ttl=1.0)
        await crashed.acquire()
        # Simulate a crash: stop renewing without releasing.
        assert crashed._renewer is not None
        crashed._renewer.cancel()
        crashed.seq = None
        with pytest.raises(LockError):
            await ApplyLock(api, ttl=1.0).acquire()
        survivor = ApplyLock(api, ttl=1.0)
        await survivor.acquire(timeout=5)
        await survivor.release()
    finally:
        await api.close()


async def test_a_live_holder_keeps_its_lease_past_the_ttl(nats_server: NatsServer) -> None:
    api = await _api(nats_server.url)
    try:
        holder = ApplyLock(api, ttl=1.0)
        await holder.acquire()
        await asyncio.sleep(2.5)
        with pytest.raises(LockError):
            await ApplyLock(api, ttl=1.0).acquire()
        await holder.release()
    finally:
        await api.close()


async def test_force_unlock_removes_the_lease(nats_server: NatsServer) -> None:
    api = await _api(nats_server.url)
    try:
        held = ApplyLock(api)
        await held.acquire()
        who = await force_unlock(api)
        assert who is not None and str(os.getpid()) in who
        assert await current_holder(api) is None
        await ApplyLock(api).acquire()
        assert await force_unlock(api) is not None
        assert await force_unlock(api) is None
        held.seq = None
    finally:
        await api.close()


async def test_a_holder_whose_lease_was_taken_over_finds_out_before_its_next_request(
    nats_server: NatsServer,
) -> None:
    api = await _api(nats_server.url)
    try:
        first = ApplyLock(api, ttl=30.0)
        await first.acquire()
        await first.ensure_held()  # fresh: no round trip needed
        await force_unlock(api)
        second = ApplyLock(api, ttl=30.0)
        await second.acquire()
        with pytest.raises(LockLost, match=r"another apply took it over \(.*pid \d+"):
            await first.confirm()
        with pytest.raises(LockLost):
            await first.ensure_held()
        await first.release()  # must leave the new holder's lease alone
        holder = await current_holder(api)
        assert holder is not None and holder.token == second.token
        await second.release()
        assert await current_holder(api) is None
    finally:
        await api.close()


async def test_a_renewal_whose_reply_was_lost_does_not_lose_the_lease(
    nats_server: NatsServer,
) -> None:
    api = await _api(nats_server.url)
    try:
        lock = ApplyLock(api, ttl=30.0)
        await lock.acquire()
        assert lock.seq is not None
        # A renewal reached the server but its reply never came back: the key moved on.
        landed = await _put(api, lock.me, lock.seq)
        assert landed is not None and landed != lock.seq
        await lock.confirm()
        assert lock.lost is None and lock.seq is not None and lock.seq > landed
        await lock.release()
        assert await current_holder(api) is None
    finally:
        await api.close()


def test_a_bad_lock_ttl_is_a_clear_error(nats_server: NatsServer, tmp_path: Path) -> None:
    proc = run_cli(
        "apply",
        "-s",
        nats_server.url,
        "--topology",
        str(copy_topology(tmp_path)),
        "--auto-approve",
        env={"JELMORE_LOCK_TTL": "soon"},
    )
    assert_clean_error(proc)
    assert "JELMORE_LOCK_TTL must be a positive number of seconds" in proc.stderr


def test_apply_fails_while_another_holds_the_lock_and_lock_false_skips_it(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)

    _hold_lock(nats_server.url)
    proc = run_cli("apply", "-s", nats_server.url, "--topology", str(topo), "--auto-approve")
    assert_clean_error(proc)
    assert "another apply holds the lock" in proc.stderr
    assert "force-unlock" in proc.stderr
    assert "JELMORE" not in raw.stream_names(nats_server.url)
    unlocked = run_cli("force-unlock", "-s", nats_server.url, "--yes")
    assert unlocked.returncode == 0, unlocked.stderr
    assert "Removed the apply lock" in unlocked.stdout
    _hold_lock(nats_server.url)
    skipped = run_cli(
        "apply", "-s", nats_server.url, "--topology", str(topo), "--auto-approve", "--lock=false"
    )
    assert skipped.returncode == 0, skipped.stderr


def test_two_racing_applies_exactly_one_proceeds_and_the_topology_ends_correct(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    # Enough work that the first apply still holds the lock when the second one starts.
    extra = ["streams:"]
    for i in range(200):
        extra += [f"  RACE{i:03d}:", f"    subjects: [race{i:03d}.>]", "    storage: memory"]
    (topo / "race.yaml").write_text("\n".join(extra) + "\n")
    cmd = [
        sys.executable,
        "-m",
        "jelmore_infra",
        "apply",
        "-s",
        nats_server.url,
        "--topology",
        str(topo),
        "--auto-approve",
    ]
    env = {**os.environ, "NO_COLOR": "1"}
    procs = [
        subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    codes = sorted(r[0] for r in results)
    if codes == [0, 0]:
        # On a loaded machine the first apply can finish before the second one starts; then the
        # two did not overlap, and the second found the server already matching the topology.
        changed = [r for r in results if "No changes" not in r[1]]
        assert len(changed) == 1, results
        assert "Apply complete!" in changed[0][1]
    else:
        assert codes == [0, 1], results
        loser = next(r for r in results if r[0] == 1)
        winner = next(r for r in results if r[0] == 0)
        assert "another apply holds the lock" in loser[2]
        assert "Apply complete!" in winner[1]
    check = run_cli("plan", "-s", nats_server.url, "--topology", str(topo), "--detailed-exitcode")
    assert check.returncode == 0, check.stdout + check.stderr


def _dead_pid() -> int:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(dead.stdout)


async def test_lease_of_a_dead_process_on_this_host_is_taken_over(nats_server: NatsServer) -> None:
    dead_pid = _dead_pid()
    api = await _api(nats_server.url)
    try:
        ghost = ApplyLock(api)
        ghost.me = {**ghost.me, "pid": dead_pid}
        await ghost.acquire()
        assert ghost._renewer is not None
        ghost._renewer.cancel()
        ghost.seq = None
        taker = ApplyLock(api)
        await taker.acquire()
        assert taker.took_over_from is not None
        assert f"pid {dead_pid}" in taker.took_over_from
        await taker.release()
    finally:
        await api.close()


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


async def test_lease_of_a_live_process_is_never_taken_over(nats_server: NatsServer) -> None:
    sleeper = _sleeper()
    api = await _api(nats_server.url)
    try:
        other = ApplyLock(api)
        other.me = {**other.me, "pid": sleeper.pid}
        await other.acquire()
        with pytest.raises(LockError, match=f"pid {sleeper.pid}"):
            await ApplyLock(api).acquire()
        await other.release()
    finally:
        sleeper.kill()
        sleeper.wait()
        await api.close()


def test_apply_waits_up_to_lock_timeout_then_names_the_holder(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)

    _hold_lock(nats_server.url)
    proc = run_cli(
        "apply",
        "-s",
        nats_server.url,
        "--topology",
        str(topo),
        "--auto-approve",
        "--lock-timeout",
        "1s",
    )
    assert_clean_error(proc)
    assert "after waiting 1s" in proc.stderr
    assert f"pid {os.getpid()}" in proc.stderr
    bad = run_cli("apply", "-s", nats_server.url, "--topology", str(topo), "--lock-timeout", "soon")
    assert_clean_error(bad)
    assert "--lock-timeout" in bad.stderr


def _many_streams(tmp_path: Path, count: int) -> Path:
    topo = tmp_path / "many"
    topo.mkdir()
    lines = ["streams:"]
    for i in range(count):
        lines += [f"  S{i:03d}:", f"    subjects: [s{i:03d}.>]", "    storage: memory"]
    (topo / "many.yaml").write_text("\n".join(lines) + "\n")
    return topo


def _start_apply(url: str, topology: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jelmore_infra",
            "apply",
            "-s",
            url,
            "--topology",
            str(topology),
            "--auto-approve",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1", **env},
    )


def _read_stderr(proc: subprocess.Popen[bytes], until: bytes | None, timeout: float) -> bytes:
    """Read the process's stderr until ``until`` appears (None: until nothing more is waiting)."""
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0 if until is None else 0.2)
        if not ready:
            if until is None:
                return data
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
        if until is not None and until in data:
            return data
    if until is None:
        return data
    raise AssertionError(f"{until!r} never appeared on stderr: {data.decode(errors='replace')}")


def _started(stderr: bytes) -> set[str]:
    """Stream names whose create the apply announced (it announces a step before sending it)."""
    return {
        line.split(":")[0].removeprefix("stream.")
        for line in stderr.decode().splitlines()
        if line.endswith("Creating...")
    }


async def test_an_apply_paused_past_its_lease_sends_nothing_after_another_takes_the_lock(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    url = nats_server.url
    count = 400
    proc = _start_apply(url, _many_streams(tmp_path, count), JELMORE_LOCK_TTL="2")
    api = await _api(url)
    other = ApplyLock(api, ttl=2.0)
    try:
        before = _read_stderr(proc, b"Creating...\n", timeout=60)
        os.kill(proc.pid, signal.SIGSTOP)
        # The paused apply cannot renew: its lease expires and another apply takes the lock.
        await other.acquire(timeout=60)
        before += _read_stderr(proc, None, timeout=5)  # all it wrote before it was paused
        started = _started(before)
        assert 0 < len(started) < count, "the apply was paused too late to test anything"
        os.kill(proc.pid, signal.SIGCONT)
        rest = b""
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            rest += _read_stderr(proc, None, timeout=1)
            await asyncio.sleep(0.05)
        rest += _read_stderr(proc, None, timeout=5)
        err = rest.decode()
        assert proc.returncode == 1, (before + rest).decode()
        # No step starts after it resumed. A step checks the lease and announces itself with no
        # await in between, so the stop can land between the two in at most one step (the
        # process runs one task at a time): that one is announced late; no other may start.
        late = _started(rest)
        assert len(late) <= 1, err
        created = {n for n in await asyncio.to_thread(raw.stream_names, url) if n.startswith("S")}
        assert created <= started | late
        assert "lost the apply lock: another apply took it over" in err
        assert f"pid {os.getpid()}" in err
        assert "not attempted:" in err
        assert "Traceback" not in err
        holder = await current_holder(api)
        assert holder is not None and holder.token == other.token  # the lock it lost stays
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait()
        await other.release()
        await api.close()


@pytest.mark.parametrize(
    "signals", [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM,)], ids=["double-SIGINT", "SIGTERM"]
)
def test_an_interrupted_apply_releases_the_lock_quietly(
    nats_server: NatsServer, tmp_path: Path, signals: tuple[int, ...]
) -> None:
    proc = _start_apply(nats_server.url, _many_streams(tmp_path, 400))
    try:
        _read_stderr(proc, b"Creating...\n", timeout=60)
        for n, sig in enumerate(signals):
            if n:
                time.sleep(0.01)  # the second Ctrl-C 10 ms after the first
            os.kill(proc.pid, sig)
        _, err_bytes = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = err_bytes.decode()
    assert proc.returncode == 1, err
    assert err.rstrip().endswith("Aborted.")
    assert "Task was destroyed" not in err
    assert "Traceback" not in err

    async def holder() -> Holder | None:
        api = await _api(nats_server.url)
        try:
            return await current_holder(api)
        finally:
            await api.close()

    assert asyncio.run(holder()) is None


@pytest.mark.parametrize(
    "signals",
    [(signal.SIGINT,), (signal.SIGINT, signal.SIGINT), (signal.SIGTERM,)],
    ids=["SIGINT", "double-SIGINT", "SIGTERM"],
)
def test_a_signal_at_the_confirmation_prompt_aborts_at_once_and_releases_the_lock(
    nats_server: NatsServer, tmp_path: Path, signals: tuple[int, ...]
) -> None:
    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jelmore_infra",
            "apply",
            "-s",
            nats_server.url,
            "--topology",
            str(copy_topology(tmp_path)),
        ],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
    )
    os.close(secondary)
    out = b""
    deadline = time.monotonic() + 60
    interrupted = False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):
                    out += os.read(main, 65536)
            if not interrupted and b"Enter a value:" in out:
                for n, sig in enumerate(signals):
                    if n:
                        time.sleep(0.01)  # the second Ctrl-C 10 ms after the first
                    os.kill(proc.pid, sig)
                interrupted = True
        # No answer is ever typed: the prompt must give way to the signal on its own.
        assert proc.wait(timeout=30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with contextlib.suppress(OSError):
            out += os.read(main, 65536)
        os.close(main)
    text = out.decode(errors="replace")
    assert interrupted, text
    assert "Aborted." in text
    assert "Traceback" not in text and "Task was destroyed" not in text

    async def holder() -> Holder | None:
        api = await _api(nats_server.url)
        try:
            return await current_holder(api)
        finally:
            await api.close()

    assert asyncio.run(holder()) is None
    assert "JELMORE" not in raw.stream_names(nats_server.url)


def test_a_lock_holder_with_control_characters_is_shown_escaped(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jelmore_infra.live import lock as lock_module

    me = lock_module._me()
    monkeypatch.setattr(lock_module, "_me", lambda: {**me, "user": "evil\x1b[2J\x07"})
    _hold_lock(nats_server.url)
    proc = run_cli("force-unlock", "--yes", "-s", nats_server.url)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr
    assert "evil\\x1b[2J\\x07@" in proc.stdout


async def test_a_lock_bucket_without_a_stream_leader_is_a_lock_error_not_a_nats_error(
    nats_server: NatsServer,
) -> None:
    """Nobody answers a write to a bucket whose stream has no leader yet (here: no stream at all,
    as on a cluster in the moment after the bucket was created): retried, then a LockError."""
    api = await JetStreamAPI.connect(ConnectionSettings(url=nats_server.url, timeout=0.5))
    try:
        with pytest.raises(LockError, match=r"did not answer within 0\.5s"):
            await _put(api, {"holder": "test"}, 0)
    finally:
        await api.close()
