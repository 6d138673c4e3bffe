"""Reuse compiled bytecode across environments that share installed files.

uv installs by hard-linking files from its cache, so the same release of a
dependency in two environments (or in the registry's own environment, when
both use one uv cache) is literally the same file: same inode, same content,
same mtime. A ``.pyc`` compiled for it in one environment is therefore valid
in the other -- Python checks the source's mtime and size recorded in the
``.pyc`` header -- and can be hard-linked instead of recompiled. That turns
the first ``import prefect`` of a new environment from several seconds of
compiling into about one second of loading. Files that are not the same
inode are left alone; Python compiles those itself as usual.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

TAG = sys.implementation.cache_tag  # e.g. cpython-311


def site_packages(env: Path) -> Path | None:
    found = sorted(env.glob("lib/python3*/site-packages"))
    return found[0] if found else None


def registry_site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def share_bytecode(target: Path, donors: Iterable[Path]) -> int:
    """Link donors' ``.pyc`` files into ``target`` where the sources are the same file."""
    linked = 0
    for donor in donors:
        if donor.is_dir() and donor != target:
            linked += _share_from(target, donor)
    return linked


def _share_from(target: Path, donor: Path) -> int:
    linked = 0
    suffix = f".{TAG}.pyc"
    for dirpath, _dirnames, filenames in os.walk(donor):
        if not dirpath.endswith("__pycache__"):
            continue
        package = Path(dirpath).parent.relative_to(donor)
        for name in filenames:
            if name.endswith(suffix) and _link_one(target, donor, package, name, name[: -len(suffix)]):
                linked += 1
    return linked


def _link_one(target: Path, donor: Path, package: Path, pyc: str, module: str) -> bool:
    source, theirs = target / package / f"{module}.py", donor / package / f"{module}.py"
    ours = target / package / "__pycache__" / pyc
    try:
        if ours.exists() or not os.path.samefile(source, theirs):
            return False
        ours.parent.mkdir(exist_ok=True)
        try:
            os.link(donor / package / "__pycache__" / pyc, ours)
        except OSError:
            shutil.copy2(donor / package / "__pycache__" / pyc, ours)
    except OSError:
        return False
    return True
