"""One process at a time per run: a lock file that works across processes, on one machine or a shared
filesystem.

The lock is ``<run folder>/train.lock``, created with ``os.link`` from a fully written temporary file, which
is atomic and fails if the lock exists -- on a local disk and on NFS alike (``O_EXCL`` is not reliable on old
NFS). It holds who took it (:class:`Holder`: host, pid, the process's start time, when, a random token).

A lock is *stale*, and is broken by the next process that wants it, when its holder is gone:

* on this host: its pid no longer exists, or exists with another start time (the pid was reused) --
  e.g. after ``kill -9``, a power cut or a crashed kernel;
* on another host (a shared filesystem): its holder has not refreshed the lock's mtime (a heartbeat thread
  does so every ``HEARTBEAT_S``) for ``STALE_AFTER_S``.

Breaking goes through a second lock (``train.lock.break``) and re-reads the token first, so two processes
that both find a lock stale never remove a fresh one that a third process took in between.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

__all__ = ["Holder", "RunLock", "LockTimeout", "HEARTBEAT_S", "STALE_AFTER_S", "this_process"]

#: The holder refreshes its lock's mtime this often (seconds).
HEARTBEAT_S = 30.0
#: A lock of another host whose mtime is older than this is stale (its holder stopped refreshing it).
STALE_AFTER_S = 600.0
#: A break lock older than this was left by a process killed while breaking (it takes milliseconds).
_BREAK_STALE_S = 60.0


class LockTimeout(TimeoutError):
    """Waited longer than the caller allowed for another process to release a run."""


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot, Linux ``/proc``), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name in parentheses


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock."""

    host: str
    pid: int
    process_start: str | None
    time: str
    token: str

    def describe(self) -> str:
        return f"{self.host}:{self.pid} since {self.time}"

    def is_gone(self, mtime: float, now: float, stale_after_s: float = STALE_AFTER_S) -> bool:
        """True when the holder cannot be running any more (see the module docstring)."""
        if self.host != socket.gethostname():
            return now - mtime > stale_after_s
        if not _pid_exists(self.pid):
            return True
        start = _process_start(self.pid)
        return self.process_start is not None and start is not None and start != self.process_start


def this_process() -> Holder:
    return Holder(host=socket.gethostname(), pid=os.getpid(), process_start=_process_start(os.getpid()),
                  time=time.strftime("%Y-%m-%dT%H:%M:%S%z"), token=uuid.uuid4().hex)


def _create_exclusive(path: Path, content: str) -> bool:
    """Create ``path`` holding ``content``, atomically, only if it does not exist; False if it does."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(content)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _read_holder(path: Path) -> tuple[Holder | None, float | None]:
    """The lock's holder and mtime; (None, None) when there is no lock; (None, mtime) when it is
    unreadable."""
    try:
        mtime = path.stat().st_mtime
        text = path.read_text()
    except FileNotFoundError:
        return None, None
    try:
        return Holder(**json.loads(text)), mtime
    except (ValueError, TypeError):
        return None, mtime


class RunLock:
    """The lock of one run folder. ``acquire`` waits while another live process holds it; use it as a context.

    Attributes (after ``acquire``):
        waited_for: the holder this process waited for (None if the lock was free).
        recovered: the dead holder whose stale lock this process broke (None if there was none).
    """

    def __init__(self, folder: Path, *, stale_after_s: float = STALE_AFTER_S,
                 heartbeat_s: float = HEARTBEAT_S):
        self.path = Path(folder) / "train.lock"
        self.stale_after_s, self.heartbeat_s = stale_after_s, heartbeat_s
        self.holder: Holder | None = None
        self.waited_for: Holder | None = None
        self.recovered: Holder | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def current(self) -> Holder | None:
        """Who holds the lock now, if anyone alive does (a stale lock reads as free)."""
        holder, mtime = _read_holder(self.path)
        if holder is None or holder.is_gone(mtime, time.time(), self.stale_after_s):
            return None
        return holder

    def try_acquire(self) -> bool:
        """Take the lock if it is free or stale; never waits."""
        me = this_process()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not _create_exclusive(self.path, json.dumps(asdict(me))):
            if not self._break_if_stale() or not _create_exclusive(self.path, json.dumps(asdict(me))):
                return False
        self.holder = me
        self._stop.clear()
        name = f"prkd-lock-{self.path.parent.name}"
        self._beat = threading.Thread(target=self._heartbeat, name=name, daemon=True)
        self._beat.start()
        return True

    def acquire(self, *, log: Callable[[str], None] = print, poll_s: float = 1.0,
                timeout_s: float | None = None,
                tell_every_s: float = 300.0) -> "RunLock":
        """Take the lock, waiting (with a message now and every ``tell_every_s``) while a live process holds
        it."""
        start = told = time.monotonic()
        while not self.try_acquire():
            holder = self.current()
            if holder is not None and (self.waited_for is None or holder.token != self.waited_for.token):
                self.waited_for = holder
                log(f"run {self.path.parent.name} is being trained by {holder.describe()}; waiting for it to "
                    f"finish (Ctrl-C stops waiting here; the other process goes on)")
            elif time.monotonic() - told > tell_every_s:
                told = time.monotonic()
                log(f"still waiting for run {self.path.parent.name} ({time.monotonic() - start:.0f} s)")
            if timeout_s is not None and time.monotonic() - start > timeout_s:
                raise LockTimeout(f"waited {timeout_s:.0f} s for run {self.path.parent.name}, held by "
                                  f"{holder.describe() if holder else 'another process'}; try again later")
            time.sleep(poll_s)
        return self

    def release(self) -> None:
        """Give the lock back (only if this process still holds it: a broken lock is left to its new
        holder)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        holder, _ = _read_holder(self.path)
        if self.holder is not None and holder is not None and holder.token == self.holder.token:
            self.path.unlink(missing_ok=True)
        self.holder = None

    def __enter__(self) -> "RunLock":
        return self.acquire() if self.holder is None else self

    def __exit__(self, *exc) -> None:
        self.release()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                os.utime(self.path)
            except OSError:  # removed by hand; the next acquire sees it free
                return

    def _break_if_stale(self) -> bool:
        """Remove the lock if its holder is gone; True if it was removed (or had vanished)."""
        holder, mtime = _read_holder(self.path)
        if mtime is None:
            return True
        now = time.time()
        stale = holder.is_gone(mtime, now, self.stale_after_s) if holder else now - mtime > _BREAK_STALE_S
        if not stale:
            return False
        breaker = self.path.with_name(self.path.name + ".break")
        if not _create_exclusive(breaker, str(os.getpid())):
            try:
                if now - breaker.stat().st_mtime > _BREAK_STALE_S:
                    breaker.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            return False
        try:
            again, _ = _read_holder(self.path)
            if (again.token if again else None) != (holder.token if holder else None):
                return False  # someone else broke it and took it meanwhile
            self.path.unlink(missing_ok=True)
            self.recovered = holder
            return True
        finally:
            breaker.unlink(missing_ok=True)
