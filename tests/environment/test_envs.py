"""EnvironmentManager and the runner: one isolated uv environment per artifact, flows loaded only there."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from environment_helpers import NO_SUCH_PACKAGE
from procs import gone, mentioning

from lume_services.environment.envs import READY, EnvironmentManager
from lume_services.environment.runner import DESCRIBED, describe_flow, run_json
from lume_services.environment.sources import parse_source
from lume_services.environment.store import ArtifactStore
from lume_services.errors import FlowLoadError, InstallError

PREFECT = f"prefect=={importlib.metadata.version('prefect')}"


def imports(python: Path, module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-I", "-c", f"import {module}; print({module}.__file__)"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def env_dirs(root: Path) -> list[str]:
    """Everything in the environments root except the lock folder."""
    return sorted(p.name for p in root.iterdir() if p.name != ".locks") if root.exists() else []


@pytest.fixture
def my_model(store: ArtifactStore, fixture_packages):
    return store.put(parse_source(str(fixture_packages.my_model_wheel)))


class TestEnsure:
    def test_builds_an_isolated_environment(self, envs, my_model):
        env = envs.ensure(my_model)
        assert env.built is True
        assert env.sha256 == my_model.sha256
        assert env.path == envs.root / my_model.sha256
        marker = json.loads((env.path / READY).read_text())
        assert marker["sha256"] == my_model.sha256 and marker["artifact"] == my_model.filename
        assert env_dirs(envs.root) == [my_model.sha256]  # no .build-* left behind
        found = imports(env.python, "my_model")
        assert found.returncode == 0, found.stderr
        assert found.stdout.strip().startswith(str(env.path))
        # the registry's own interpreter was not touched
        assert importlib.util.find_spec("my_model") is None
        assert imports(Path(sys.executable), "my_model").returncode != 0

    def test_second_ensure_reuses_it(self, envs, my_model):
        first = envs.ensure(my_model)
        stamp = (first.path / READY).stat().st_mtime_ns
        again = envs.ensure(my_model)
        assert (again.built, again.path) == (False, first.path)
        assert (again.path / READY).stat().st_mtime_ns == stamp  # nothing reinstalled
        assert envs.get(my_model.sha256) == again
        # a new manager (another process, a restart) finds it as well
        other = EnvironmentManager(envs.root, envs.settings, envs.uv_bin, envs.home)
        assert other.ensure(my_model).built is False

    def test_other_artifact_of_the_same_version_gets_its_own_environment(self, envs, store, fixture_packages):
        wheel = envs.ensure(store.put(parse_source(str(fixture_packages.my_model_wheel))))
        sdist_artifact = store.put(parse_source(str(fixture_packages.my_model_sdist)))
        sdist = envs.ensure(sdist_artifact)
        assert sdist.built is True and sdist.path != wheel.path
        assert env_dirs(envs.root) == sorted([wheel.sha256, sdist.sha256])
        assert imports(sdist.python, "my_model").returncode == 0

    @pytest.mark.parametrize("which", ["setuptools_sdist", "legacy_sdist"])
    def test_setuptools_sdists_install(self, envs, store, fixture_packages, which):
        env = envs.ensure(store.put(parse_source(str(getattr(fixture_packages, which)))))
        package = "setup_model" if which == "setuptools_sdist" else "legacy_model"
        assert imports(env.python, package).returncode == 0

    def test_incomplete_leftover_is_replaced(self, envs, my_model):
        leftover = envs.path_for(my_model.sha256)
        leftover.mkdir(parents=True)
        (leftover / "half-written").write_text("crashed build")
        assert envs.get(my_model.sha256) is None  # no .ready: not an environment
        env = envs.ensure(my_model)
        assert env.built is True
        assert not (env.path / "half-written").exists()
        assert (env.path / READY).exists()

    def test_install_failure_surfaces_the_installer_message(self, envs, store, fixture_packages):
        artifact = store.put(parse_source(str(fixture_packages.bad_dependency_wheel)))
        with pytest.raises(InstallError) as info:
            envs.ensure(artifact)
        assert info.value.package == artifact.filename
        assert NO_SUCH_PACKAGE in info.value.detail  # uv's explanation, not ours
        assert NO_SUCH_PACKAGE in str(info.value) and "the installer said" in str(info.value)
        assert env_dirs(envs.root) == []  # no environment, no .build-* leftovers
        assert envs.get(artifact.sha256) is None


def _ensure_in_child(root, settings, uv_bin, home, artifact, barrier, results) -> None:
    manager = EnvironmentManager(root, settings, uv_bin, home)
    barrier.wait(timeout=60)
    try:
        env = manager.ensure(artifact)
        results.put((env.built, str(env.path)))
    except BaseException as exc:  # report instead of dying silently
        results.put(("error", repr(exc)))


def test_concurrent_ensure_builds_once(envs, my_model):
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    args = (envs.root, envs.settings, envs.uv_bin, envs.home, my_model, barrier, results)
    children = [ctx.Process(target=_ensure_in_child, args=args) for _ in range(3)]
    for child in children:
        child.start()
    answers = [results.get(timeout=180) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert sorted(built for built, _ in answers) == [False, False, True], answers
    assert {path for _, path in answers} == {str(envs.path_for(my_model.sha256))}
    assert env_dirs(envs.root) == [my_model.sha256]
    assert imports(envs.path_for(my_model.sha256) / "bin" / "python", "my_model").returncode == 0


# -- the runner: loading flows in the environment's own interpreter --------------------


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory, session_settings, uv_bin, fixture_packages):
    """One environment with prefect, my_model and (as an extra requirement) not_a_flow.

    The only environment with prefect in this module: the first import of prefect
    in a fresh environment is slow, so both runner cases share it.
    """
    home = tmp_path_factory.mktemp("runner-home")
    store = ArtifactStore(home / "store", session_settings, uv_bin)
    envs = EnvironmentManager(home / "envs", session_settings, uv_bin, home)
    artifact = store.put(parse_source(str(fixture_packages.my_model_wheel)))
    env = envs.ensure(artifact, [PREFECT, str(fixture_packages.not_a_flow_wheel)])
    return env, home


class TestDescribeFlow:
    def test_flow_name_entrypoint_and_parameters(self, prefect_env, session_settings):
        env, home = prefect_env
        described = describe_flow(
            env.python,
            "my_model",
            home=home,
            timeout=session_settings.describe_timeout,
            package="my-model 0.1.0",
        )
        assert described["flow_name"] == "my-model-flow"
        assert described["entrypoint"] == "my_model.flow.flow"
        assert described["model"] == "my_model.model:Model"
        assert described["prefect_version"] == importlib.metadata.version("prefect")
        properties = described["parameters"]["properties"]
        assert set(properties) == {"input1", "input2"}
        assert properties["input1"]["default"] == 1.0 and properties["input2"]["default"] == 2.0
        assert (home / "prefect").is_dir()  # Prefect's home inside LUME_HOME
        assert "my_model" not in sys.modules

    def test_the_answer_is_kept_in_the_environment_and_reused(self, prefect_env, session_settings, tmp_path):
        env, home = prefect_env
        kept = tmp_path / "env-copy"  # the cache goes where ``environment`` says; the shared env stays clean
        kept.mkdir()
        args = dict(home=home, timeout=session_settings.describe_timeout, package="my-model 0.1.0", environment=kept)
        first = describe_flow(env.python, "my_model", **args)
        assert json.loads((kept / DESCRIBED).read_text())["my_model"] == first
        # A second describe does not start the interpreter at all: a missing one would fail otherwise.
        assert describe_flow(tmp_path / "no-such-python", "my_model", **args) == first
        (kept / DESCRIBED).write_text("{not json")  # unreadable: described again, and kept again
        assert describe_flow(env.python, "my_model", **args) == first
        assert json.loads((kept / DESCRIBED).read_text()) == {"my_model": first}

    def test_entry_point_that_is_not_a_flow(self, prefect_env, session_settings):
        env, home = prefect_env
        with pytest.raises(
            FlowLoadError, match="not_a_flow.flow:flow is a function, not a Prefect flow"
        ) as info:
            describe_flow(env.python, "not_a_flow", home=home, timeout=60, package="not-a-flow 0.1.0")
        assert "not-a-flow 0.1.0" in str(info.value)

    def test_entry_point_not_installed(self, prefect_env):
        env, home = prefect_env
        with pytest.raises(
            FlowLoadError, match=r"entry point other.flow is not installed \(found: .*my_model.flow"
        ):
            describe_flow(env.python, "other", home=home, timeout=60, package="other 1.0")

    def test_timeout(self, prefect_env):
        env, home = prefect_env
        with pytest.raises(FlowLoadError, match="did not finish within 0.01 s"):
            describe_flow(env.python, "my_model", home=home, timeout=0.01, package="my-model 0.1.0")


class TestRunner:
    def test_import_error_shows_the_traceback_tail(self, envs, my_model, home):
        env = envs.ensure(my_model)  # no prefect in this environment
        with pytest.raises(FlowLoadError, match="No module named 'prefect'") as info:
            describe_flow(env.python, "my_model", home=home, timeout=60, package="my-model 0.1.0")
        assert "Traceback" in info.value.detail

    def test_child_gets_no_lume_variables(self, envs, my_model, home, monkeypatch):
        monkeypatch.setenv("LUME_MODEL_DB__PASSWORD", "secret")
        monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "WARNING")
        env = envs.ensure(my_model)
        script = "import json, os, sys; print(json.dumps({'env': dict(os.environ), 'isolated': sys.flags.isolated}))"
        answer = run_json(env.python, script, [], home=home, timeout=60, package="probe")
        assert not [k for k in answer["env"] if k.upper().startswith("LUME_")]
        assert answer["env"]["PREFECT_HOME"] == str(home / "prefect")
        assert answer["env"]["PREFECT_LOGGING_LEVEL"] == "WARNING"
        assert answer["isolated"] == 1

    def test_no_json_answer(self, envs, my_model, home):
        env = envs.ensure(my_model)
        with pytest.raises(FlowLoadError, match="printed no JSON answer"):
            run_json(env.python, "print('hello')", [], home=home, timeout=60, package="probe")


def test_compiled_modules_are_shared_with_environments_that_hold_the_same_files(tmp_path):
    """Same inode source => the donor's .pyc is linked, and Python accepts it."""
    import subprocess
    import sys

    from lume_services.environment.bytecode import TAG, share_bytecode

    donor, target = tmp_path / "donor", tmp_path / "target"
    for site in (donor, target):
        (site / "pkg").mkdir(parents=True)
    (donor / "pkg" / "mod.py").write_text("VALUE = 42\n")
    os.link(donor / "pkg" / "mod.py", target / "pkg" / "mod.py")  # as uv links from its cache
    (donor / "pkg" / "other.py").write_text("VALUE = 1\n")
    (target / "pkg" / "other.py").write_text("VALUE = 1\n")  # equal text, another file: not shared
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(donor)], check=True)
    assert share_bytecode(target, [donor]) == 1
    pyc = target / "pkg" / "__pycache__" / f"mod.{TAG}.pyc"
    assert pyc.samefile(donor / "pkg" / "__pycache__" / f"mod.{TAG}.pyc")
    assert not (target / "pkg" / "__pycache__" / f"other.{TAG}.pyc").exists()
    # what Python validates: the header's source mtime and size match the target's source
    header, source = pyc.read_bytes()[:16], (target / "pkg" / "mod.py").stat()
    assert int.from_bytes(header[4:8], "little") == 0  # timestamp-based pyc
    assert int.from_bytes(header[8:12], "little") == int(source.st_mtime) & 0xFFFFFFFF
    assert int.from_bytes(header[12:16], "little") == source.st_size
    out = subprocess.run([sys.executable, "-B", "-c", "import pkg.mod; print(pkg.mod.VALUE)"],
                         cwd=target, capture_output=True, text=True)  # fmt: skip
    assert out.stdout.strip() == "42"


# -- builds killed midway: the installer dies with the builder, the next build sweeps -----


def _build_slowly(root, settings, uv_bin, home, artifact) -> None:
    os.environ.update(UV_LINK_MODE="copy", UV_CONCURRENT_INSTALLS="1")  # time to be killed mid-install
    EnvironmentManager(root, settings, uv_bin, home).ensure(artifact, [PREFECT])


def _wait_for_install(root: Path, child) -> tuple[Path, list[int]]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.is_alive():
        for build in root.glob(".build-*"):
            installers = [p for p in mentioning(str(build)) if p != child.pid]
            if installers and (build / "pyvenv.cfg").exists():
                return build, installers
        time.sleep(0.01)
    raise AssertionError("the build never reached its install")


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
class TestKilledBuild:
    def test_the_installer_dies_with_the_builder_and_the_next_build_sweeps(self, envs, my_model):
        child = multiprocessing.get_context("fork").Process(
            target=_build_slowly, args=(envs.root, envs.settings, envs.uv_bin, envs.home, my_model)
        )
        child.start()
        build, installers = _wait_for_install(envs.root, child)
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
        # a copying install of prefect takes longer than 5 s here
        assert gone(installers, 5) and mentioning(str(build)) == [], "uv outlived the killed builder"
        assert not (build / READY).exists()
        lock = envs.root / ".locks" / f"{my_model.sha256}.lock"
        assert envs.stale() == [build, lock]  # left behind, and nobody holds the lock
        env = envs.ensure(my_model)
        assert env.built is True and imports(env.python, "my_model").returncode == 0
        assert env_dirs(envs.root) == [my_model.sha256]  # the dead build is gone
        assert list((envs.root / ".locks").iterdir()) == []  # and so is its lock file

    def test_a_build_whose_lock_is_held_is_not_stale(self, envs, my_model):
        build = envs.root / f".build-{my_model.sha256}-live"
        build.mkdir(parents=True)
        (envs.root / ".locks").mkdir()
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, time; from pathlib import Path; from lume_services.environment.locks import PathLock;"
             "PathLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(300)",
             str(envs.lock_for(my_model.sha256).path)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert holder.stdout.readline().strip() == "held"
            assert envs.stale() == [] and envs.sweep() == []
            assert build.exists()
        finally:
            holder.kill()
            holder.wait()
        assert envs.stale() == [build, envs.lock_for(my_model.sha256).path]  # its holder is gone
        assert envs.sweep() == [build, envs.lock_for(my_model.sha256).path]
        assert env_dirs(envs.root) == []


class TestPathLock:
    def test_a_lock_file_removed_by_its_holder_never_gives_two_holders(self, tmp_path: Path):
        from lume_services.environment.locks import PathLock

        path = tmp_path / "x.lock"
        first = PathLock(path)
        assert first.acquire()
        opened = os.open(path, os.O_RDWR)  # a waiter that opened the old file before it was removed
        first.release(remove=True)
        second = PathLock(path)
        assert second.acquire(blocking=False)  # the name leads to a new file
        import fcntl

        fcntl.flock(opened, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the old inode locks too...
        assert os.fstat(opened).st_ino != os.stat(path).st_ino  # ...which PathLock detects and retries
        assert not PathLock(path).acquire(blocking=False)  # the current file is held: one holder
        os.close(opened)
        second.release(remove=True)
        assert not path.exists()
