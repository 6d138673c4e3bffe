"""Build real model packages at test time (wheels and sdists of every flavour).

Every package follows the lume-services contract (``orchestration`` entry
points ``<pkg>.flow`` and optionally ``<pkg>.model``) unless a test asks for
a broken one. Builds run ``uv build`` (hatchling/setuptools from the index,
cached by uv), so they are real artifacts, not hand-made archives.
"""

from __future__ import annotations

import subprocess
import tempfile
import textwrap
from pathlib import Path
from typing import Optional

from uv import find_uv_bin

# The imports and the two tasks every test flow module is made of.
TASKS = """
from prefect import flow as prefect_flow
from prefect import task


@task
def double(x: float) -> float:
    return 2 * x


@task
def add(a: float, b: float) -> float:
    return a + b
"""

FLOW_MODULE = (
    TASKS
    + """

@prefect_flow(name="{flow_name}")
def flow(input1: float = 1.0, input2: float = 2.0) -> dict:
    return {{"sum": add(double(input1), input2), "version": "{version}"}}
"""
)

MODEL_MODULE = """
class Model:
    def evaluate(self, input1: float, input2: float) -> dict:
        return {"sum": 2 * input1 + input2}
"""


def write_project(
    root: Path,
    *,
    dist: str = "lume-fixture-model",
    package: str = "lume_fixture_model",
    version: str = "0.1.0",
    backend: str = "hatchling",
    flow_name: str = "fixture-flow",
    dependencies: tuple[str, ...] = ("prefect>=3.4,<4",),
    entry_points: Optional[dict[str, str]] = None,
    image_module: Optional[str] = None,
    container_url: Optional[str] = None,
    flow_source: Optional[str] = None,
    files: Optional[dict[str, str]] = None,
) -> Path:
    """Write a project directory; ``backend`` is hatchling, setuptools or legacy (setup.py only).

    ``files`` are more files of the import package (path relative to it: text),
    e.g. ``{"variables.yml": ...}``.
    """
    project = root / f"{dist}-{version}-{backend}"
    src = project / package
    src.mkdir(parents=True, exist_ok=True)
    (src / "__init__.py").write_text(f'__version__ = "{version}"\n')
    (src / "flow.py").write_text(flow_source or FLOW_MODULE.format(flow_name=flow_name, version=version))
    (src / "model.py").write_text(MODEL_MODULE)
    if image_module is not None:
        (src / "_image.py").write_text(image_module)
    for relative, text in (files or {}).items():
        (src / relative).parent.mkdir(parents=True, exist_ok=True)
        (src / relative).write_text(text)
    eps = (
        entry_points
        if entry_points is not None
        else {f"{package}.flow": f"{package}.flow:flow", f"{package}.model": f"{package}.model:Model"}
    )
    writer = {"hatchling": _pyproject, "setuptools": _pyproject, "legacy": _setup_py}[backend]
    writer(project, dist, package, version, backend, dependencies, eps, container_url)
    return project


def _pyproject(project, dist, package, version, backend, deps, eps, container_url) -> None:
    build = (
        '[build-system]\nrequires = ["hatchling>=1.24"]\nbuild-backend = "hatchling.build"\n'
        if backend == "hatchling"
        else '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    lines = [
        build,
        "[project]",
        f'name = "{dist}"',
        f'version = "{version}"',
        'requires-python = ">=3.11"',
        f"dependencies = {list(deps)!r}".replace("'", '"'),
    ]
    if container_url:
        lines += ["", "[project.urls]", f'"Container Image" = "{container_url}"']
    if eps:
        lines += ["", "[project.entry-points.orchestration]"] + [f'"{k}" = "{v}"' for k, v in eps.items()]
    if backend == "hatchling":
        lines += ["", "[tool.hatch.build.targets.wheel]", f'packages = ["{package}"]']
    else:
        lines += ["", "[tool.setuptools]", f'packages = ["{package}"]']
    (project / "pyproject.toml").write_text("\n".join(lines) + "\n")


def _setup_py(project, dist, package, version, backend, deps, eps, container_url) -> None:
    ep_lines = [f"{k} = {v}" for k, v in eps.items()]
    (project / "setup.py").write_text(
        textwrap.dedent(
            f"""
            from setuptools import setup

            setup(
                name={dist!r},
                version={version!r},
                packages=[{package!r}],
                install_requires={list(deps)!r},
                entry_points={{"orchestration": {ep_lines!r}}},
            )
            """
        )
    )


def build(project: Path, out: Path, kind: str = "sdist") -> Path:
    """``uv build --sdist`` or ``--wheel`` into a new folder under ``out``; returns the artifact."""
    out.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(dir=out, prefix=f"{project.name}-"))
    before = set(out.iterdir())
    result = subprocess.run(
        [find_uv_bin(), "build", f"--{kind}", "--out-dir", str(out), str(project)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (artifact,) = [p for p in set(out.iterdir()) - before if p.name.endswith((".tar.gz", ".whl"))]
    return artifact


def zip_sdist(sdist: Path) -> Path:
    """The same sdist as a .zip next to it (the other sdist format installers accept)."""
    import tarfile
    import zipfile

    target = sdist.with_name(sdist.name.removesuffix(".tar.gz") + ".zip")
    with tarfile.open(sdist) as tar, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in tar.getmembers():
            if member.isfile():
                zf.writestr(member.name, tar.extractfile(member).read())
    return target
