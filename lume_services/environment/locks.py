"""Exclusive file locks whose lock files can be removed safely.

``flock`` locks the open file, not its name: removing a lock file that
another process has opened but not yet locked would give two holders (the
old inode and a new one). So a holder checks, once locked, that the name
still leads to the inode it locked, and starts again when not; a holder
may then remove the file before unlocking, and a lock left by a dead
process (the kernel drops its ``flock`` with it) is found and removed by
:func:`remove_if_free`. Nothing is left behind by a finished build.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path


class PathLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1

    def acquire(self, *, blocking: bool = True) -> bool:
        """Lock ``path`` (created if missing); False when not blocking and another process holds it."""
        flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, flags)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return False
                raise
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)  # removed (and perhaps re-created) by its last holder: lock the current file

    def release(self, *, remove: bool = False) -> None:
        if self._fd < 0:
            return
        if remove:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        os.close(self._fd)  # closing drops the flock
        self._fd = -1

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def __enter__(self) -> PathLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release(remove=True)

    def __repr__(self) -> str:
        return f"PathLock({str(self.path)!r}, held={self.held})"


def remove_if_free(path: Path) -> bool:
    """Remove the lock file ``path`` when nobody holds it; True if it was removed."""
    lock = PathLock(path)
    if not lock.acquire(blocking=False):
        return False
    lock.release(remove=True)
    return True
