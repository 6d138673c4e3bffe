"""Child processes that never outlive the registry process that started them.

A killed store used to leave its ``uv pip install`` running to completion,
and Prefect's ephemeral server outlived the process that started it. Here
every such child gets a *guard*: a tiny interpreter (``python -I -S``, its
own session, deaf to SIGINT and SIGHUP) blocked reading a pipe whose only
writer is this process. We write one byte to release it when the child is
done with; end of file without that byte means this process died, even by
SIGKILL, and the guard then stops the child (SIGTERM, then SIGKILL after a
grace period): its whole process group for commands started by :func:`run`,
which run in a session of their own so that anything *they* start dies too.
The guard checks the child's start time first, so a reused pid is never hit.

:func:`run` is ``subprocess.run(capture_output=True, text=True)`` with that
guard, and on timeout or interruption it kills the child's whole group.
:func:`guard` protects a process started by someone else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Optional

GRACE_SECONDS = 5.0

# Runs in its own interpreter; argv: read fd, pid, start time ('' if unknown), '1' for a group.
GUARD = r"""
import os, signal, sys, time
fd, pid, start, group = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
grace = float(sys.argv[5])
for sig in (signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
try:
    released = os.read(fd, 1)
except OSError:
    released = b""
if released:
    sys.exit(0)
def alive():
    if not start:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[19] == start
    except (OSError, IndexError):
        return False
def send(sig):
    try:
        os.killpg(pid, sig) if group else os.kill(pid, sig)
    except OSError:
        pass
if group or alive():
    send(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive():
        time.sleep(0.05)
    if group or alive():
        send(signal.SIGKILL)
"""


def start_time(pid: int) -> str:
    """The kernel's start time of ``pid`` (Linux), '' where /proc is not available."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


class Guard:
    """Stops ``pid`` (or its process group) if this process dies before :meth:`release`."""

    def __init__(self, pid: int, *, group: bool, grace: float = GRACE_SECONDS) -> None:
        self.pid = pid
        read, self._write = os.pipe()  # neither end is inherited by other children
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", GUARD, str(read), str(pid), start_time(pid),
                 "1" if group else "0", str(grace)],
                pass_fds=(read,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        except BaseException:
            os.close(self._write)
            raise
        finally:
            os.close(read)
        self._lock = threading.Lock()

    def release(self) -> None:
        """The child is done with: the guard exits without touching it."""
        with self._lock:
            if self._write < 0:
                return
            try:
                os.write(self._write, b"x")
            except OSError:
                pass
            os.close(self._write)
            self._write = -1
        self._process.wait()

    def __repr__(self) -> str:
        return f"Guard(pid={self.pid})"


_guards: dict[int, Guard] = {}


def guard(pid: int) -> Guard:
    """Guard a process this one started by other means (one guard per pid)."""
    found = _guards.get(pid)
    if found is None:
        found = _guards[pid] = Guard(pid, group=False)
    return found


def _forget_guards_in_child() -> None:
    # A forked child must not hold the pipes: the guards watch the parent only.
    for found in _guards.values():
        if found._write >= 0:
            os.close(found._write)
            found._write = -1
    _guards.clear()


os.register_at_fork(after_in_child=_forget_guards_in_child)


def run(
    argv: Sequence[str],
    *,
    env: Optional[dict[str, str]] = None,
    timeout: Optional[float] = None,
    cwd: Optional[str] = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion in its own session, guarded; output captured as text.

    Raises subprocess.TimeoutExpired after killing the whole group when
    ``timeout`` passes; any other interruption also kills the group first.
    """
    process = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, cwd=cwd, start_new_session=True,
    )  # fmt: skip
    watch = None
    try:
        watch = Guard(process.pid, group=True)
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        kill_group(process)
        raise
    finally:
        if watch is not None:
            watch.release()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL ``process``'s whole group (it leads its own session) and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        process.communicate(timeout=GRACE_SECONDS)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        pass
    process.poll()
