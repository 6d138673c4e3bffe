"""Guarded children: whatever the registry starts dies with it, even when it is SIGKILLed.

Each test starts a real parent interpreter that starts real children, kills
the parent with SIGKILL, and looks the children up in /proc afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from procs import alive, gone

from lume_services.environment import children

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# A child that starts a grandchild, writes both pids to the file argv[1], then sleeps.
FAMILY = (
    "import os, subprocess, sys, time; g = subprocess.Popen(['sleep', '300']); "
    "open(sys.argv[1], 'w').write('%d %d\\n' % (os.getpid(), g.pid)); time.sleep(300)"
)


def start_parent(tmp_path: Path, body: str) -> tuple[subprocess.Popen, list[int]]:
    """A parent interpreter running ``body``; it writes the pids to watch into a file, one per line."""
    pids = tmp_path / "pids"
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import subprocess, sys, time
            from pathlib import Path
            from lume_services.environment import children
            PIDS = Path({str(pids)!r})
            FAMILY = {FAMILY!r}
            """
        )
        + textwrap.dedent(body)
    )
    parent = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "PYTHONPATH": os.getcwd()})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if pids.exists() and pids.read_text().endswith("\n"):
            return parent, [int(p) for p in pids.read_text().split()]
        assert parent.poll() is None, "the parent exited early"
        time.sleep(0.05)
    parent.kill()
    raise AssertionError("the parent never reported its children")


class TestRun:
    def test_returns_output_and_exit_code_like_subprocess_run(self):
        code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
        done = children.run([sys.executable, "-c", code])
        assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")

    def test_a_timeout_kills_the_child_and_what_it_started(self, tmp_path: Path):
        with pytest.raises(subprocess.TimeoutExpired):
            children.run([sys.executable, "-c", FAMILY, str(tmp_path / "pids")], timeout=3)
        child, grandchild = (int(p) for p in (tmp_path / "pids").read_text().split())
        assert not alive(child)
        try:
            assert gone([grandchild], 15)
        finally:
            kill_all([grandchild])

    def test_a_sigkilled_parent_takes_the_child_and_grandchild_with_it(self, tmp_path: Path):
        parent, family = start_parent(
            tmp_path,
            """
            children.run([sys.executable, "-c", FAMILY, str(PIDS)])
            """,
        )
        assert len(family) == 2 and all(alive(p) for p in family)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        try:
            assert gone(family, 15), "the guarded child or its own child outlived the killed parent"
        finally:
            kill_all(family)


class TestGuard:
    def test_a_guarded_process_dies_with_the_parent(self, tmp_path: Path):
        parent, (pid,) = start_parent(
            tmp_path,
            """
            other = subprocess.Popen(["sleep", "300"])
            children.guard(other.pid)
            PIDS.write_text(f"{other.pid}\\n")
            time.sleep(300)
            """,
        )
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        try:
            assert gone([pid], 15)
        finally:
            kill_all([pid])

    def test_a_released_guard_leaves_the_process_alone(self, tmp_path: Path):
        parent, (pid,) = start_parent(
            tmp_path,
            """
            other = subprocess.Popen(["sleep", "300"], start_new_session=True)
            children.guard(other.pid).release()
            PIDS.write_text(f"{other.pid}\\n")
            time.sleep(300)
            """,
        )
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        try:
            time.sleep(1.0)
            assert alive(pid)
        finally:
            kill_all([pid])

    def test_a_reused_pid_is_never_hit(self):
        """The guard compares the kernel's start time: another process under the pid is spared."""
        me = os.getpid()
        guard_script = children.GUARD
        read, write = os.pipe()
        guard = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", guard_script, str(read), str(me), "1", "0", "1"],
            pass_fds=(read,),
        )
        os.close(read)
        os.close(write)  # "the parent died" -- but pid `me` started at another time than '1'
        assert guard.wait(timeout=30) == 0
        assert alive(me)
