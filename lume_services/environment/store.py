"""The content-addressed artifact store: ``<root>/blobs/<sha256>/<filename>``.

An artifact is stored once per sha256 whatever its source; a supplied
expected hash that is already stored skips the download altogether.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from lume_services.environment import children
from lume_services.environment.fetch import Progress, download
from lume_services.environment.settings import EnvironmentSettings
from lume_services.environment.sources import Source, archive_filename
from lume_services.errors import ChecksumMismatchError, InstallError, StorageError, ValidationError

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Artifact:
    sha256: str
    path: Path

    @property
    def filename(self) -> str:
        return self.path.name


def normalize_expected(expected: Optional[str]) -> Optional[str]:
    if expected is None:
        return None
    digest = str(expected).strip().lower().removeprefix("sha256:")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValidationError("expected_sha256", expected, "expected 64 hexadecimal digits")
    return digest


class ArtifactStore:
    def __init__(self, root: Path, settings: EnvironmentSettings, uv_bin: str) -> None:
        self.root = root
        self.settings = settings
        self.uv_bin = uv_bin

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    def lookup(self, sha256: str) -> Optional[Artifact]:
        folder = self.blobs / sha256
        files = sorted(folder.iterdir()) if folder.is_dir() else []
        return Artifact(sha256, files[0]) if files else None

    def put(
        self, source: Source, *, expected_sha256: Optional[str] = None, progress: Optional[Progress] = None
    ) -> Artifact:
        """Bring ``source`` into the store (download, copy or build) and return it."""
        expected = normalize_expected(expected_sha256)
        try:
            return self._put(source, expected, progress)
        except OSError as exc:
            raise StorageError(f"Storing {source.original} in the artifact store", self.root, exc) from exc

    def _put(self, source: Source, expected: Optional[str], progress: Optional[Progress]) -> Artifact:
        if expected is not None and (found := self.lookup(expected)) is not None:
            return found
        if source.kind == "url":
            assert source.url is not None
            got = download(source.url, self.root / "tmp", self.settings, progress=progress)
            return self._commit(got.path, got.sha256, source.filename, source.original, expected)
        assert source.path is not None
        if source.kind == "directory":
            return self._build_directory(source, expected)
        return self._copy_in(source.path, source.original, expected)

    def _copy_in(self, path: Path, original: str, expected: Optional[str]) -> Artifact:
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix=".part-")
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as src, os.fdopen(fd, "wb") as out:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return self._commit(Path(name), digest.hexdigest(), path.name, original, expected)

    def _commit(
        self, tmp: Path, sha256: str, filename: str, original: str, expected: Optional[str]
    ) -> Artifact:
        if expected is not None and not hmac.compare_digest(expected, sha256):
            tmp.unlink(missing_ok=True)
            raise ChecksumMismatchError(original, expected, sha256)
        existing = self.lookup(sha256)
        if existing is not None:
            tmp.unlink(missing_ok=True)
            return existing
        folder = self.blobs / sha256
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / filename
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
        return Artifact(sha256, final)

    def _build_directory(self, source: Source, expected: Optional[str]) -> Artifact:
        """Build an sdist of a local project with uv (runs its build backend: trusted input only)."""
        assert source.path is not None
        with tempfile.TemporaryDirectory(dir=self._tmp()) as out:
            cmd = [self.uv_bin, "build", "--sdist", "--out-dir", out, str(source.path)]
            try:
                result = children.run(
                    cmd, timeout=self.settings.install_timeout,
                    env=build_environment(self.settings, self.root.parent),
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise InstallError(
                    str(source.path),
                    f"`uv build --sdist` took longer than {self.settings.install_timeout:g} s",
                ) from None
            if result.returncode != 0:
                raise InstallError(str(source.path), "`uv build --sdist` failed:\n" + tail(result.stderr))
            built = [p for p in Path(out).iterdir() if p.name.endswith(".tar.gz")]
            if len(built) != 1:
                raise InstallError(
                    str(source.path), f"`uv build --sdist` produced {sorted(p.name for p in built)}"
                )
            archive_filename(source.original, built[0].name)
            return self._copy_in(built[0], source.original, expected)

    def _tmp(self) -> Path:
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def build_environment(settings: EnvironmentSettings, home: Path) -> dict[str, str]:
    """The environment for uv and package subprocesses: no LUME_* (secrets) passed on."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("LUME_")}
    if settings.uv_cache_dir is not None:
        env["UV_CACHE_DIR"] = str(settings.uv_cache_dir)
    env.setdefault("UV_NO_PROGRESS", "1")
    return env


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
