"""Helpers for the environment tests: hand-made archives and small file-system checks.

Hand-made archives cover what no build backend produces (malicious members,
bombs, odd metadata). Imported by the tests as ``environment_helpers``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path
from typing import Optional

MiB = 1024 * 1024
NO_SUCH_PACKAGE = "lume-services-no-such-package-xyz"


def files_under(root: Path) -> list[str]:
    """Every file (not directory) below ``root``, relative, sorted."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- hand-made archives (for what no build backend would produce) ---------------------


def make_wheel(
    folder: Path,
    *,
    name: str = "hand-made",
    version: str = "1.0",
    metadata_extra: str = "",
    entry_points: Optional[str] = None,
    files: Optional[dict[str, bytes]] = None,
    filename: Optional[str] = None,
) -> Path:
    """A minimal wheel written with zipfile: METADATA, entry_points.txt (unless "") and ``files``."""
    pkg = name.replace("-", "_")
    info = f"{pkg}-{version}.dist-info"
    if entry_points is None:
        entry_points = f"[orchestration]\n{pkg}.flow = {pkg}.flow:flow\n"
    members = {
        f"{pkg}/__init__.py": b"",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{metadata_extra}".encode(),
    }
    if entry_points:  # "" leaves entry_points.txt out
        members[f"{info}/entry_points.txt"] = entry_points.encode()
    members.update(files or {})
    path = folder / (filename or f"{pkg}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return path


def sdist_members(name: str = "hand-made", version: str = "1.0") -> dict[str, bytes]:
    """The members of a valid hatchling-style sdist (entry points in pyproject.toml)."""
    pkg = name.replace("-", "_")
    root = f"{pkg}-{version}"
    pyproject = (
        f'[project]\nname = "{name}"\nversion = "{version}"\n\n'
        f'[project.entry-points.orchestration]\n"{pkg}.flow" = "{pkg}.flow:flow"\n'
    )
    return {
        f"{root}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{root}/pyproject.toml": pyproject.encode(),
        f"{root}/{pkg}/__init__.py": b"",
    }


def make_sdist(
    folder: Path,
    members: dict[str, bytes],
    *,
    extra: Optional[list[tarfile.TarInfo]] = None,
    filename: str = "hand_made-1.0.tar.gz",
) -> Path:
    """A .tar.gz with regular ``members`` followed by the raw ``extra`` headers (links, devices...)."""
    path = folder / filename
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def make_tar_bomb(path: Path, member_size: int, member: str = "bomb-0.1/zeros.bin") -> Path:
    """A .tar.gz whose one member is ``member_size`` bytes of zeros, written without ever holding them.

    gzip allows concatenated members and readers see one stream, so one compressed
    MiB of zeros is written again and again: a 300 MiB member costs ~300 KB and no CPU.
    """
    assert member_size % MiB == 0
    header = tarfile.TarInfo(member)
    header.size = member_size
    zeros = gzip.compress(b"\0" * MiB)
    with open(path, "wb") as out:
        out.write(gzip.compress(header.tobuf(format=tarfile.PAX_FORMAT)))
        for _ in range(member_size // MiB):
            out.write(zeros)
        out.write(gzip.compress(b"\0" * 2 * tarfile.BLOCKSIZE))  # end-of-archive blocks
    return path
