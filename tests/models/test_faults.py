"""Fault injection: store_deployment SIGKILLed at every step, mid-install, and with Prefect's
ephemeral server; a full disk. Afterwards nothing is half-stored, nothing keeps running, the
debris is found (by the next store or by doctor) and a retry stores exactly one deployment.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from procs import children_of, gone, mentioning

from lume_services import config
from lume_services.models import Model
from lume_services.models.doctor import examine
from lume_services.models.registration import Services, store_deployment

pytestmark = pytest.mark.slow

MODEL = dict(author="Fault Injector", laboratory="slac", facility="lcls", beampath="cu_hxr", description="f")
CHILD = Path(__file__).with_name("store_child.py")
# Each pause is the start of a step: the child is killed with everything before it done.
PAUSES = ["fetch", "inspect", "install", "load flow", "register", "record", "after"]


class Store:
    """A storing child process; :meth:`until` reads its output up to a line starting with ``word``."""

    def __init__(
        self, model_id: int, source: Path, project: str, pause: str, env: dict | None = None
    ) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), str(model_id), str(source), project, pause],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(CHILD.parent), os.getcwd()]), **(env or {})},
        )  # fmt: skip
        self.output: list[str] = []

    def until(self, word: str, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if line.startswith(word):
                return line
        self.kill()
        raise AssertionError(f"the storing child never printed {word!r}:\n" + "".join(self.output[-40:]))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process.stdout.close()


@pytest.fixture
def faulty(registry, monkeypatch, tmp_path):
    """A registry with its own LUME_HOME (cold installs) and its own Prefect pool (a clean sweep)."""
    monkeypatch.setenv("LUME_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LUME_PREFECT__POOL_NAME", f"faults-{uuid.uuid4().hex[:8]}")
    ctx = config.configure()
    model = Model.create_model(**MODEL)
    ctx.model_db_service().store_project(project_name="faults", description="fault injection")
    ctx.scheduling_service().create_project("faults")
    return ctx, model.model_id


def recorded(ctx, model_id: int) -> tuple[int, int]:
    svc = ctx.model_db_service()
    deployments = svc.get_deployments(model_id=model_id)
    flows = [f for d in deployments for f in svc.get_flows(deployment_id=d.deployment_id)]
    return len(deployments), len(flows)


def unrecorded_prefect_deployments(ctx) -> list[str]:
    found = examine(ctx, min_age=timedelta(0))
    (finding,) = [f for f in found.findings if f.check == "prefect deployments"]
    return finding.items


def debris(ctx) -> list[str]:
    envs = ctx.environment_manager()
    return [str(p) for p in envs.stale()]


class TestKilledStore:
    def test_killed_before_each_step_it_leaves_no_rows_and_a_retry_stores_one(self, faulty, artifacts):
        ctx, model_id = faulty
        for pause in PAUSES:
            store = Store(model_id, artifacts["sdist"], "faults", pause)
            store.until("PAUSED")
            children = children_of(store.process.pid)
            store.kill()
            assert gone(children, 10), f"children of a store killed at {pause!r} outlived it"
            assert recorded(ctx, model_id) == ((1, 1) if pause == "after" else (0, 0)), pause
            assert debris(ctx) == [], pause  # a kill between steps leaves no build behind
            orphans = unrecorded_prefect_deployments(ctx)
            # Registered but not recorded: recognisable (tag and pool), found by doctor.
            assert len(orphans) == (1 if pause == "record" else 0), (pause, orphans)
        record = store_deployment(
            Services.from_context(), model_id=model_id, source_path=artifacts["sdist"], project_name="faults"
        )
        assert recorded(ctx, model_id) == (1, 1)
        assert record.is_live and ctx.environment_manager().get(record.sha256) is not None
        assert unrecorded_prefect_deployments(ctx) == []

    def test_killed_mid_install_its_installer_dies_and_the_retry_sweeps_the_build(self, faulty, artifacts):
        ctx, model_id = faulty
        envs = ctx.environment_manager()
        store = Store(model_id, artifacts["sdist"], "faults", "", env={"UV_LINK_MODE": "copy"})
        store.until("STEP install")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            builds = list(envs.root.glob(".build-*")) if envs.root.exists() else []
            if builds and (builds[0] / "pyvenv.cfg").exists() and mentioning(f"{builds[0]}/bin/python"):
                break
            time.sleep(0.01)
        else:
            store.kill()
            raise AssertionError("the install never started:\n" + "".join(store.output))
        store.kill()
        assert gone(mentioning(str(builds[0])), 5), "uv outlived the killed store"
        assert recorded(ctx, model_id) == (0, 0)
        assert debris(ctx) == [str(builds[0]), str(envs.root / ".locks" / f"{builds[0].name[7:71]}.lock")]
        record = store_deployment(
            Services.from_context(), model_id=model_id, source_path=artifacts["sdist"], project_name="faults"
        )
        assert recorded(ctx, model_id) == (1, 1) and record.is_live
        assert debris(ctx) == [] and not builds[0].exists()


def test_prefects_ephemeral_server_dies_with_a_killed_store(
    registry, monkeypatch, tmp_path, artifacts, prefect_server
):
    """No Prefect server configured: the store starts Prefect's own; killing the store stops it."""
    monkeypatch.setenv("LUME_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LUME_PREFECT__API_URL")
    (tmp_path / "home" / "prefect").mkdir(parents=True)
    # A copy of the session server's migrated database spares the ephemeral server its migrations.
    with sqlite3.connect(prefect_server.log.parent / "prefect.db") as source:
        with sqlite3.connect(tmp_path / "home" / "prefect" / "prefect.db") as copy:
            source.backup(copy)
    ctx = config.configure()
    model = Model.create_model(**MODEL)
    ctx.model_db_service().store_project(project_name="faults", description="fault injection")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    store = Store(model.model_id, artifacts["sdist"], "faults", "record", env=env)
    store.until("PAUSED")
    servers = [
        p for p in children_of(store.process.pid) if b"uvicorn" in Path(f"/proc/{p}/cmdline").read_bytes()
    ]
    assert len(servers) == 1, store.output
    store.kill()
    assert gone(servers, 15), "Prefect's ephemeral server outlived the killed store"
    assert recorded(ctx, model.model_id) == (0, 0)


# -- a full disk: a small tmpfs mounted by the test ---------------------------------------


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs, filled up; yields its mount point. Needs root (CI runs as root)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs as root: the full-disk tests must run there")
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"mounting a tmpfs was refused: {done.stderr}")
        pytest.skip(f"mounting a tmpfs was refused: {done.stderr.strip()}")
    try:
        (mount / "home" / "store" / "tmp").mkdir(parents=True)
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass  # full
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_while_fetching_is_a_storage_error_naming_the_path(
    registry, monkeypatch, full_disk, artifacts
):
    from lume_services.errors import StorageError

    monkeypatch.setenv("LUME_HOME", str(full_disk / "home"))
    ctx = config.configure()
    model = Model.create_model(**MODEL)
    ctx.model_db_service().store_project(project_name="faults", description="fault injection")
    with pytest.raises(StorageError) as info:
        store_deployment(
            Services.from_context(),
            model_id=model.model_id,
            source_path=artifacts["sdist"],
            project_name="faults",
        )
    error = info.value
    assert error.step == "fetch" and error.errno == 28
    assert str(full_disk / "home" / "store") in error.path
    assert "No space left on device" in str(error) and "free space on that filesystem" in str(error)
    assert recorded(ctx, model.model_id) == (0, 0)
    assert not (full_disk / "home" / "store" / "blobs").exists() or not any(
        (full_disk / "home" / "store" / "blobs").iterdir()
    )
    assert list((full_disk / "home" / "store" / "tmp").iterdir()) == []  # the partial copy is gone
    disk = [f for f in examine(ctx).findings if f.check == "disk space"]
    assert disk[0].status == "attention" and "free of" in disk[0].summary


def test_a_full_disk_under_sqlite_names_the_drivers_reason(monkeypatch, full_disk):
    from lume_services.errors import DatabaseError
    from lume_services.services.models.db.db import ModelDB, ModelDBConfig
    from lume_services.services.models.service import ModelDBService

    with pytest.raises(DatabaseError, match="database or disk is full"):
        ModelDBService(ModelDB(ModelDBConfig(sqlite_path=full_disk / "registry.db"))).store_model(**MODEL)
