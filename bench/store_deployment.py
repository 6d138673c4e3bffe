"""Benchmark: Model.store_deployment against a bare `uv venv` + `uv pip install`.

Prints, measured side by side in one run on this machine:
  * cold store_deployment of examples/my-model (an sdist with numpy and
    prefect dependencies; nothing of it in LUME_HOME yet) against a bare
    `uv venv` + `uv pip install` of the same archive (a copy at a new path,
    so that uv builds the sdist as the store must), both with the same uv
    cache state -- once with a cold (empty) uv cache, once with uv's own
    warm cache (the default, shared with the registry's environment) -- and
    against the floor: that bare install plus one warm describe of its flow
    in the new environment (the subprocess the store runs, timed after a
    first one has compiled and cached its modules; goal: at most 1.3x);
  * a warm re-store of the same artifact (goal: under 0.5 s);
  * metadata inspection time per archive kind (wheel, hatchling sdist,
    setuptools sdist, legacy setup.py sdist);
  * the time to read a package's variables (a lume-model config of 25, and
    one of 220 variables) from a wheel, a .tar.gz and a .zip sdist: the
    inspection with the variables file minus the same package's without it,
    next to a bare yaml.load of the same file (goal: under 5 ms each).
Prefect runs in its ephemeral mode, started before anything is timed.

    .venv/bin/python bench/store_deployment.py [--repeat N] [--skip-cold-cache]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version as installed_version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "my-model"
sys.path.insert(0, str(ROOT / "tests"))  # the package builders used by the tests


def uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def build_sdist(out: Path) -> Path:
    subprocess.run(
        [uv(), "build", "--sdist", "--out-dir", str(out), str(SAMPLE)], check=True, capture_output=True
    )
    return next(out.glob("*.tar.gz"))


def bare_install(archive: Path, work: Path, cache: Path | None) -> float:
    return bare_install_at(archive, work, cache)[0]


def bare_install_at(archive: Path, work: Path, cache: Path | None) -> tuple[float, Path]:
    """A bare install of a copy of ``archive`` at a path uv has not seen.

    uv caches the wheel it builds from a local sdist by the sdist's path: a
    second install from the same path skips the build. A registry never gets
    that (each stored artifact is a new file in its store, and a new release
    is a new sdist), so the floor installs a fresh copy and builds it too.
    """
    env = {**os.environ, **({"UV_CACHE_DIR": str(cache)} if cache else {})}
    target = Path(tempfile.mkdtemp(dir=work, prefix="bare-"))
    copy = Path(tempfile.mkdtemp(dir=work, prefix="archive-")) / archive.name
    shutil.copy2(archive, copy)
    archive = copy
    started = time.perf_counter()
    subprocess.run([uv(), "venv", "--quiet", "--python", sys.executable, str(target)], check=True, env=env)
    subprocess.run(
        [uv(), "pip", "install", "--quiet", "--python", str(target / "bin" / "python"), str(archive),
         f"prefect=={installed_version('prefect')}"],
        check=True, env=env,
    )  # fmt: skip
    return time.perf_counter() - started, target


def warm_describe(env: Path, work: Path) -> float:
    """One describe of the sample's flow in ``env`` after a first one (modules compiled and cached)."""
    from lume_services.environment.runner import describe_flow

    describe = lambda: describe_flow(env / "bin" / "python", "my_model", home=work, timeout=300, package="my_model")  # noqa: E731
    describe()
    started = time.perf_counter()
    describe()
    return time.perf_counter() - started


def registry(home: Path, cache: Path | None):
    """A fresh embedded registry in ``home`` using uv cache ``cache`` (None: uv's own), Prefect started."""
    from lume_services import config
    from lume_services.models import Model

    os.environ["LUME_HOME"] = str(home)
    if cache is None:
        os.environ.pop("LUME_ENVIRONMENT__UV_CACHE_DIR", None)
    else:
        os.environ["LUME_ENVIRONMENT__UV_CACHE_DIR"] = str(cache)
    ctx = config.configure()
    model = Model.create_model(author="bench", laboratory="slac", facility="lcls", beampath="cu_hxr",
                               description=f"bench {home.name}")  # fmt: skip
    ctx.model_db_service().store_project(project_name="bench", description="benchmark")
    ctx.scheduling_service().create_project("bench")
    return model


def timed_store(model, archive: Path) -> float:
    started = time.perf_counter()
    model.store_deployment(str(archive), project_name="bench")
    return time.perf_counter() - started


def cold_pair(archive: Path, work: Path, cache: Path | None, prefect_home: Path) -> tuple[float, float, float]:
    """A cold store, the bare install of the same archive, and that install plus one warm describe (the floor)."""
    home = Path(tempfile.mkdtemp(dir=work, prefix="home-"))
    model = registry(home, cache)
    ours = timed_store(model, archive)
    bare, env = bare_install_at(archive, work, cache)
    return ours, bare, bare + warm_describe(env, work)


def inspection_times(work: Path) -> dict[str, float]:
    from packages import build, write_project

    from lume_services.environment.inspect import inspect_archive
    from lume_services.environment.settings import EnvironmentSettings

    kinds = {}
    for backend in ("hatchling", "setuptools", "legacy"):
        project = write_project(work / "inspect", backend=backend, dist="my-model", package="my_model")
        kinds[f"{backend} sdist"] = build(project, work / "inspect-dist", "sdist")
        if backend == "hatchling":
            kinds["wheel"] = build(project, work / "inspect-dist", "wheel")
    settings, times = EnvironmentSettings(), {}
    for kind, path in kinds.items():
        samples = []
        for _ in range(50):
            started = time.perf_counter()
            inspect_archive(path, settings)
            samples.append(time.perf_counter() - started)
        times[kind] = statistics.median(samples)
    return times


def lume_model_config(inputs: int = 200, outputs: int = 20) -> str:
    """A lume-model 2 config like the ones lume-model writes (torch_model.yml)."""
    lines = ["model_class: TorchModel", "input_variables:"]
    lines += [f"  QUAD:IN20:{i}:BACT: {{variable_type: scalar, default: 0.5, value_range: [-10.0, 10.0], "
              f"is_constant: false, unit: kG}}" for i in range(inputs)]  # fmt: skip
    lines += ["output_variables:"] + [f"  OTRS:IN20:{i}:XRMS: {{variable_type: scalar}}" for i in range(outputs)]
    return "\n".join([*lines, "model: model.pt", "output_format: tensor", ""])


def median_time(call, repeat: int = 50) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def variables_times(work: Path) -> list[tuple[str, float, float]]:
    """(what, the variables' share of inspect_archive, a bare yaml.load of the same file) per size and kind.

    The share is inspect_archive with the variables file minus inspect_archive
    of the same package without it; the bare load (libyaml's safe loader) is
    the floor for any YAML reader in Python.
    """
    import yaml
    from packages import build, write_project, zip_sdist

    from lume_services.environment.inspect import inspect_archive
    from lume_services.environment.settings import EnvironmentSettings

    settings, rows = EnvironmentSettings(), []
    plain = write_project(work / "vars-none", dist="my-model", package="my_model")
    without = {"wheel": build(plain, work / "vars-none-dist", "wheel"),
               ".tar.gz sdist": build(plain, work / "vars-none-dist", "sdist")}  # fmt: skip
    without[".zip sdist"] = zip_sdist(without[".tar.gz sdist"])
    base = {kind: median_time(lambda p=path: inspect_archive(p, settings)) for kind, path in without.items()}
    for inputs, outputs in ((20, 5), (200, 20)):
        config = lume_model_config(inputs, outputs)
        project = write_project(work / f"vars-{inputs}", dist="my-model", package="my_model",
                                files={"configs/torch_model.yml": config})  # fmt: skip
        sdist = build(project, work / f"vars-{inputs}-dist", "sdist")
        archives = {"wheel": build(project, work / f"vars-{inputs}-dist", "wheel"), ".tar.gz sdist": sdist,
                    ".zip sdist": zip_sdist(sdist)}  # fmt: skip
        floor = median_time(lambda c=config: yaml.load(c, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        for kind, path in archives.items():
            assert len(inspect_archive(path, settings).variables.inputs) == inputs
            share = median_time(lambda p=path: inspect_archive(p, settings)) - base[kind]
            rows.append((f"read {inputs + outputs} variables from a {kind}", share, floor))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="cold runs per cache state (median reported)")
    parser.add_argument(
        "--skip-cold-cache", action="store_true", help="skip the empty-uv-cache runs (network)"
    )
    args = parser.parse_args()
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set, so the registry's own environment holds no compiled modules"
              " for a new environment to share and the cold store compiles Prefect again; run with"
              " `env -u PYTHONDONTWRITEBYTECODE` to measure what a machine without it sees", flush=True)  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="lume-bench-"))
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect"))
    try:
        archive = build_sdist(work / "dist")
        rows = []
        warm_cache = None  # uv's own cache, shared with the registry's environment (the default)
        bare_install(archive, work, warm_cache)  # make sure it holds everything
        states = [("warm uv cache", lambda i: warm_cache)]
        if not args.skip_cold_cache:
            states.insert(0, ("cold uv cache", lambda i: work / f"uv-cache-cold-{i}"))
        for label, cache_for in states:
            pairs = [cold_pair(archive, work, cache_for(i), work / "prefect") for i in range(args.repeat)]
            ours, bare, floor = (statistics.median(p[i] for p in pairs) for i in range(3))
            rows.append((f"cold store_deployment, {label}", ours, bare, floor))
        model = registry(Path(tempfile.mkdtemp(dir=work, prefix="home-")), warm_cache)
        timed_store(model, archive)
        warm = statistics.median(timed_store(model, archive) for _ in range(5))
        inspect = inspection_times(work)
        variables = variables_times(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'measurement':48} {'ours (s)':>10} {'bare uv (s)':>12} {'ratio':>7} {'floor (s)':>10} {'ratio':>7}")
    for label, ours, bare, floor in rows:
        print(f"{label:48} {ours:10.2f} {bare:12.2f} {ours / bare:7.2f} {floor:10.2f} {ours / floor:7.2f}")
    print(f"{'warm re-store of the same artifact':48} {warm:10.3f}")
    for kind, seconds in inspect.items():
        print(f"{'inspect ' + kind:48} {seconds * 1000:9.2f} ms")
    for label, share, floor in variables:
        print(f"{label:48} {share * 1000:9.2f} ms  (bare yaml.load of the file {floor * 1000:.2f} ms, "
              f"ratio {share / floor:.2f}; goal < 5 ms)")  # fmt: skip
    print()
    for label, ours, bare, floor in rows:
        print(f"ratio {label} vs bare uv venv + install: {ours / bare:.2f}x (no goal)")
        print(f"ratio {label} vs the floor, bare install + one warm describe ({floor:.2f} s): "
              f"{ours / floor:.2f}x (goal <= 1.3x)")
    print(f"warm re-store: {warm:.3f} s (goal < 0.5 s)")


if __name__ == "__main__":
    main()
