"""The apply lock: a lease in a JetStream KV bucket, so two applies never run at once.

The lease is the key ``apply`` in bucket :data:`jelmore_infra.model.LOCK_BUCKET`, written
create-only (``Nats-Expected-Last-Subject-Sequence: 0``) with the holder's host, pid, user and start
time, and a random token naming this one lease. The bucket's ``max_age`` is the lease TTL
(``JELMORE_LOCK_TTL`` seconds, default 60), so a crashed holder's lease expires on its own; a live
holder renews it (compare-and-set on its own sequence) every third of the TTL.

Fencing: the key's sequence is the lease's fencing token. Every renewal is an update that expects
the sequence this holder last wrote, so it fails once anyone else has written the key. Before each
mutating request apply calls :meth:`ApplyLock.ensure_held`: when the last confirmed renewal is
older than half the TTL (the process was paused, the renewals failed) it renews at once, and a
renewal that finds the key moved on raises :class:`LockLost`. Nothing more is sent after that.

Releasing purges the key only while it still holds this lease's token. The bucket is never shown
in plans.

Talks to the server only through :class:`jelmore_infra.live.jsapi.JetStreamAPI`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import getpass
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jelmore_infra.errors import JetStreamAPIError, LockError
from jelmore_infra.model import LOCK_BUCKET, LOCK_STREAM

if TYPE_CHECKING:
    from jelmore_infra.live.jsapi import JetStreamAPI

LOCK_KEY = "apply"
DEFAULT_TTL = 60.0
_SUBJECT = f"$KV.{LOCK_BUCKET}.{LOCK_KEY}"
_WRONG_LAST_SEQUENCE = 10071


@dataclass(frozen=True, slots=True)
class Holder:
    host: str
    pid: int
    user: str
    started: str
    seq: int = 0
    #: The random token of the lease (empty for a lease written by an older jelmore-infra).
    token: str = ""

    def describe(self, now: float | None = None) -> str:
        return f"{self.user}@{self.host} (pid {self.pid}, since {self.started})"


def _me() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no passwd entry
        user = str(os.getuid())
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "user": user,
        "started": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def _bucket_config(ttl: float) -> dict[str, Any]:
    ttl_ns = int(ttl * 1e9)
    return {
        "name": LOCK_STREAM,
        "description": "jelmore-infra apply lock",
        "subjects": [f"$KV.{LOCK_BUCKET}.>"],
        "retention": "limits",
        "max_msgs_per_subject": 1,
        "max_age": ttl_ns,
        "duplicate_window": min(ttl_ns, 120_000_000_000),
        "discard": "new",
        "storage": "file",
        "num_replicas": 1,
        "allow_rollup_hdrs": True,
        "deny_delete": True,
        "allow_direct": True,
        "metadata": {"jelmore.lock": "true"},
    }


async def _ensure_bucket(api: JetStreamAPI, ttl: float) -> None:
    info = await api.stream_info(LOCK_STREAM)
    wanted = _bucket_config(ttl)
    if info is None or api.identity.cluster:
        # R3 on a cluster, so that the lock survives the loss of a node (an R1 lock made by an
        # earlier version is raised to R3 in place); a racing apply may create it meanwhile
        await api.ensure_stream(wanted, replicated=True)
        if info is None:
            return
        info = await api.stream_info(LOCK_STREAM) or info
    if info["config"].get("max_age") != wanted["max_age"]:
        config = dict(info["config"])
        config["max_age"] = wanted["max_age"]
        config["duplicate_window"] = min(config.get("duplicate_window") or 0, wanted["max_age"])
        await api.request(f"STREAM.UPDATE.{LOCK_STREAM}", config)


#: How often a write to a lock bucket that has no stream leader yet is tried again.
_NO_LEADER_RETRY = 0.1


async def _put(api: JetStreamAPI, body: dict[str, Any], expected_seq: int) -> int | None:
    """Write the lease if the key's last sequence is ``expected_seq``; its new sequence or None.

    A bucket created a moment ago may have no stream leader yet (on a cluster, an election):
    nobody answers the write. It is tried again until the connection's timeout has passed.
    """
    from jelmore_infra import transport
    from jelmore_infra.errors import NoResponders

    timeout = api.settings.timeout
    give_up_at = time.monotonic() + timeout
    while True:
        try:
            reply = await transport.request(
                api.nc,
                _SUBJECT,
                json.dumps(body).encode(),
                timeout=timeout,
                headers={"Nats-Expected-Last-Subject-Sequence": str(expected_seq)},
            )
            break
        except NoResponders:
            if time.monotonic() >= give_up_at:
                raise LockError(
                    f"the apply lock bucket {LOCK_BUCKET} did not answer within {timeout:g}s "
                    "(no stream leader)"
                ) from None
            await asyncio.sleep(_NO_LEADER_RETRY)
    try:
        data = transport.decode_reply(_SUBJECT, reply.data)
    except JetStreamAPIError as exc:
        if exc.err_code == _WRONG_LAST_SEQUENCE:
            return None
        raise
    return int(data["seq"])


async def current_holder(api: JetStreamAPI) -> Holder | None:
    """Who holds the lock now (None: nobody)."""
    if await api.stream_info(LOCK_STREAM) is None:
        return None
    try:
        reply = await api.request(f"STREAM.MSG.GET.{LOCK_STREAM}", {"last_by_subj": _SUBJECT})
    except JetStreamAPIError as exc:
        if exc.err_code in (10037, 10059):  # no message found / no bucket
            return None
        raise
    message = reply.get("message") or {}
    try:
        body = json.loads(base64.b64decode(message.get("data") or ""))
        return Holder(
            host=str(body.get("host", "?")),
            pid=int(body.get("pid", 0)),
            user=str(body.get("user", "?")),
            started=str(body.get("started", "?")),
            seq=int(message.get("seq", 0)),
            token=str(body.get("token", "")),
        )
    except (ValueError, TypeError):
        return Holder("?", 0, "?", "?", int(message.get("seq", 0)))


def _crashed(holder: Holder) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    if holder.host != socket.gethostname() or holder.pid <= 0 or holder.pid == os.getpid():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def _purge(api: JetStreamAPI) -> None:
    await api.request(f"STREAM.PURGE.{LOCK_STREAM}", {"filter": _SUBJECT})


class LockLost(LockError):
    """This apply no longer holds the lock: another apply took it over, or its lease expired."""


def _ttl_from_env() -> float:
    value = os.environ.get("JELMORE_LOCK_TTL")
    if not value:
        return DEFAULT_TTL
    try:
        ttl = float(value)
    except ValueError:
        ttl = 0.0
    if not ttl > 0 or ttl != ttl or ttl == float("inf"):
        raise LockError(f"JELMORE_LOCK_TTL must be a positive number of seconds, not {value!r}")
    return ttl


class ApplyLock:
    """The apply lease for one ``apply`` run."""

    def __init__(self, api: JetStreamAPI, *, ttl: float | None = None) -> None:
        self.api = api
        self.ttl = ttl if ttl is not None else _ttl_from_env()
        self.token = secrets.token_hex(8)
        self.me = {**_me(), "token": self.token}
        #: The key's sequence this holder last wrote: the fencing token (None: not held).
        self.seq: int | None = None
        self._renewer: asyncio.Task[None] | None = None
        #: Monotonic time at which the last successful write of the lease was sent.
        self._confirmed = 0.0
        #: Why the lease was lost (None: not lost).
        self.lost: str | None = None
        self._writing = asyncio.Lock()
        #: Set when the lease of a crashed apply on this machine was taken over.
        self.took_over_from: str | None = None

    async def acquire(self, timeout: float = 0.0) -> None:  # noqa: ASYNC109
        """Take the lease, waiting up to ``timeout`` seconds; LockError names the holder."""
        await _ensure_bucket(self.api, self.ttl)
        deadline = time.monotonic() + timeout
        while True:
            sent = time.monotonic()
            seq = await _put(self.api, self.me, 0)
            if seq is not None:
                self.seq = seq
                self._confirmed = sent
                self._renewer = asyncio.create_task(self._renew())
                return
            holder = await current_holder(self.api)
            if holder is not None and _crashed(holder):
                # The holder ran on this machine and its process is gone: its lease is stale.
                await _purge(self.api)
                self.took_over_from = holder.describe()
                continue
            if time.monotonic() >= deadline:
                who = holder.describe() if holder else "another apply"
                waited = f" after waiting {timeout:g}s" if timeout else ""
                raise LockError(
                    f"another apply holds the lock{waited}: {who}. Wait for it "
                    "(--lock-timeout), or remove a stale lock with `jelmore-infra force-unlock`"
                )
            await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    def _fresh(self) -> bool:
        """Whether the last confirmed write leaves at least half the TTL of the lease."""
        return time.monotonic() - self._confirmed < self.ttl / 2

    async def ensure_held(self) -> None:
        """Return only while this apply surely holds the lease; LockLost otherwise.

        Cheap while the renewals keep up; renews at once when the last one is older than half
        the TTL (the process was paused, or the renewals failed).
        """
        if self.lost is not None:
            raise LockLost(self.lost)
        if self.seq is not None and self._fresh():
            return
        await self._extend(force=False)

    async def confirm(self) -> None:
        """Renew the lease now (a round trip to the server); LockLost if it is no longer ours."""
        await self._extend(force=True)

    async def _extend(self, *, force: bool) -> None:
        async with self._writing:
            if self.lost is not None:
                raise LockLost(self.lost)
            if self.seq is None:
                raise LockLost("lost the apply lock: this apply does not hold it")
            if not force and self._fresh():
                return  # another task renewed it while this one waited
            for _ in range(2):
                sent = time.monotonic()
                new = await _put(self.api, self.me, self.seq)
                if new is not None:
                    self.seq = new
                    self._confirmed = sent
                    return
                holder = await current_holder(self.api)
                if holder is None or holder.token != self.token:
                    break
                # Our own earlier renewal landed but its reply was lost: carry on from it.
                self.seq = holder.seq
            age = time.monotonic() - self._confirmed
            if holder is not None and holder.token != self.token:
                why = f"another apply took it over ({holder.describe()})"
            else:
                why = (
                    f"its lease expired (last renewed {age:.0f}s ago, TTL {self.ttl:g}s) or it "
                    "was removed with force-unlock"
                )
            self.lost = f"lost the apply lock: {why}"
            raise LockLost(self.lost)

    async def _renew(self) -> None:
        while self.seq is not None and self.lost is None:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self._extend(force=True)
            except LockLost:
                return
            except Exception:  # transient: ensure_held renews at once when the lease ages
                continue

    async def release(self) -> None:
        """Stop renewing and remove the lease if it is still this apply's (safe to call always).

        The lease is recognised by its token, so an apply interrupted while its first write was
        in flight still removes it, and a lease another apply took over is never touched.
        """
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renewer
            self._renewer = None
        self.seq = None
        if self.lost is not None:
            return
        with contextlib.suppress(Exception):
            holder = await current_holder(self.api)
            if holder is not None and holder.token == self.token:
                await _purge(self.api)


async def force_unlock(api: JetStreamAPI) -> str | None:
    """Remove the lease whoever holds it; returns who held it (None: nobody)."""
    holder = await current_holder(api)
    if holder is None:
        return None
    await _purge(api)
    return holder.describe()
