"""Looking processes up in /proc (Linux): what fault tests check after a kill."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def _fields(entry: Path) -> list[str]:
    """/proc/<pid>/stat from field 3 (the state) on: the name in parentheses may hold spaces."""
    return (entry / "stat").read_text().rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        return _fields(Path(f"/proc/{pid}"))[0] != "Z"
    except (OSError, IndexError):
        return False


def processes(match: Callable[[Path], bool]) -> list[int]:
    """Pids of live processes whose /proc entry satisfies ``match(entry)``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if _fields(entry)[0] != "Z" and match(entry):
                found.append(int(entry.name))
        except (OSError, IndexError):
            pass
    return found


def mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    return processes(lambda entry: text.encode() in (entry / "cmdline").read_bytes())


def children_of(pid: int) -> list[int]:
    return processes(lambda entry: _fields(entry)[1] == str(pid))


def gone(pids: list[int], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for every one of ``pids`` to end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return not any(alive(p) for p in pids)
