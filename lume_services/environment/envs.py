"""One isolated virtual environment per artifact sha256, built with uv.

``<root>/<sha256>/`` holds the environment of one artifact. It is built in
``<root>/.build-<sha256>-*`` and renamed into place when complete (``.ready``
marks a finished build), so a half-built environment is never used. A lock
per sha256 (``<root>/.locks/<sha256>.lock``, removed by the build when done)
makes concurrent builds of one artifact wait for the first and reuse it.
uv runs guarded (environment/children.py): it dies with the process that
started it. What a process killed mid-build leaves (its ``.build-*``
directory and lock file) is swept by the next build: a build directory is
stale exactly when nobody holds its sha256's lock. The registry's own
interpreter is never modified.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lume_services.environment import children
from lume_services.environment.bytecode import registry_site_packages, share_bytecode, site_packages
from lume_services.environment.locks import PathLock, remove_if_free
from lume_services.environment.settings import EnvironmentSettings
from lume_services.environment.store import Artifact, build_environment, remove_tree, tail
from lume_services.errors import InstallError, StorageError

READY = ".ready"
BUILD_PREFIX = ".build-"
LOCKS = ".locks"


@dataclass(frozen=True)
class Environment:
    sha256: str
    path: Path
    built: bool  # False when an existing environment was reused

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


class EnvironmentManager:
    def __init__(self, root: Path, settings: EnvironmentSettings, uv_bin: str, home: Path) -> None:
        self.root = root
        self.settings = settings
        self.uv_bin = uv_bin
        self.home = home
        self.python = sys.executable

    @property
    def python_version(self) -> str:
        return platform.python_version()

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256

    def get(self, sha256: str) -> Environment | None:
        path = self.path_for(sha256)
        return Environment(sha256, path, built=False) if (path / READY).exists() else None

    def lock_for(self, sha256: str) -> PathLock:
        return PathLock(self.root / LOCKS / f"{sha256}.lock")

    def ensure(self, artifact: Artifact, requirements: Sequence[str] = ()) -> Environment:
        """The environment of ``artifact``, built unless it exists already."""
        found = self.get(artifact.sha256)
        if found is not None:
            return found
        try:
            (self.root / LOCKS).mkdir(parents=True, exist_ok=True)
            with self.lock_for(artifact.sha256):
                found = self.get(artifact.sha256)  # built by another process while we waited
                if found is not None:
                    return found
                self.sweep(holding=artifact.sha256)
                self._build(artifact, requirements)
        except OSError as exc:
            raise StorageError(f"Building the environment of {artifact.filename}", self.root, exc) from exc
        return Environment(artifact.sha256, self.path_for(artifact.sha256), built=True)

    def stale(self, *, holding: str | None = None) -> list[Path]:
        """Build directories and lock files left by processes that died (nobody holds their lock).

        ``holding`` is a sha256 whose lock the caller holds: its build
        directories are stale too (only a lock holder builds).
        """
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.glob(f"{BUILD_PREFIX}*")):
            sha256 = path.name[len(BUILD_PREFIX) :].partition("-")[0]
            if sha256 == holding or not self._busy(sha256):
                found.append(path)
        locks = self.root / LOCKS
        for path in sorted(locks.glob("*.lock")) if locks.is_dir() else []:
            if path.stem != holding and not self._busy(path.stem):
                found.append(path)
        return found

    def sweep(self, *, holding: str | None = None) -> list[Path]:
        """Remove what :meth:`stale` finds (a lock file only while nobody holds it); returns what went."""
        removed = []
        for path in self.stale(holding=holding):
            if path.suffix == ".lock" and path.parent.name == LOCKS:
                if remove_if_free(path):
                    removed.append(path)
            else:
                remove_tree(path)
                removed.append(path)
        return removed

    def _busy(self, sha256: str) -> bool:
        """True while a process holds the build lock of ``sha256`` (checked without creating it)."""
        path = self.root / LOCKS / f"{sha256}.lock"
        if not path.exists():
            return False
        lock = PathLock(path)
        if not lock.acquire(blocking=False):
            return True
        lock.release()
        return False

    def _build(self, artifact: Artifact, requirements: Sequence[str]) -> None:
        build = Path(tempfile.mkdtemp(dir=self.root, prefix=f"{BUILD_PREFIX}{artifact.sha256}-"))
        try:
            self._uv(artifact, "venv", "--quiet", "--relocatable", "--python", self.python, str(build))
            self._uv(
                artifact, "pip", "install", "--quiet", "--python", str(build / "bin" / "python"),
                str(artifact.path), *requirements,
            )  # fmt: skip
            self._share_bytecode(build)
            marker = {"sha256": artifact.sha256, "artifact": artifact.filename, "built": time.time()}
            (build / READY).write_text(json.dumps(marker))
            final = self.path_for(artifact.sha256)
            remove_tree(final)  # a leftover without .ready is incomplete
            os.rename(build, final)
        finally:
            remove_tree(build)

    def _share_bytecode(self, build: Path) -> None:
        """Reuse compiled modules of files this environment shares with others (see bytecode.py)."""
        target = site_packages(build)
        if target is None:
            return
        ready = sorted(
            (p for p in self.root.iterdir() if (p / READY).exists()),
            key=lambda p: (p / READY).stat().st_mtime,
        )
        donors = [registry_site_packages(), *(site_packages(p) for p in ready[-2:])]
        share_bytecode(target, [d for d in donors if d is not None])

    def _uv(self, artifact: Artifact, *args: str) -> None:
        env = build_environment(self.settings, self.home)
        try:
            result = children.run([self.uv_bin, *args], env=env, timeout=self.settings.install_timeout)
        except subprocess.TimeoutExpired:
            raise InstallError(
                artifact.filename, f"uv {args[0]} took longer than {self.settings.install_timeout:g} s"
            ) from None
        if result.returncode != 0:
            raise InstallError(artifact.filename, tail(result.stderr or result.stdout))
