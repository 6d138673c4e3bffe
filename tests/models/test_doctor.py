"""``lume-services doctor``: each kind of debris is found, explained, fixed by --fix, and then gone.

Real debris where it is cheap to make for real (a registered deployment whose
environment was removed, a Prefect deployment registered without a row), and
otherwise the exact files a killed process leaves (tests/models/test_faults.py
produces those by killing real stores).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lume_services import config
from lume_services.cli.main import cli
from lume_services.models import Model
from lume_services.models.doctor import ATTENTION, FIXED, OK, SKIPPED, examine
from lume_services.models.registration import Services, store_deployment
from lume_services.services.scheduling.service import FlowRegistration

pytestmark = pytest.mark.slow

MODEL = dict(author="Doc Tor", laboratory="slac", facility="lcls", beampath="cu_hxr", description="d")
SHA = "ab" * 32
HOUR_AGO = time.time() - 7200


@pytest.fixture
def home(registry, monkeypatch, tmp_path) -> Path:
    """The registry (database, Prefect server) with a LUME_HOME and a Prefect pool of this test's own."""
    monkeypatch.setenv("LUME_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LUME_PREFECT__POOL_NAME", f"doctor-{uuid.uuid4().hex[:8]}")
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def finding(report, check: str):
    (found,) = [f for f in report.findings if f.check == check]
    return found


def statuses(report) -> dict[str, str]:
    return {f.check: f.status for f in report.findings}


def old(path: Path) -> Path:
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    return path


class TestDebris:
    def test_a_clean_registry_needs_nothing(self, home):
        report = examine(config.configure())
        assert not report.needs_attention, report.as_dict()
        assert set(statuses(report).values()) == {OK}

    def test_files_left_by_killed_stores_are_found_and_removed(self, home):
        ctx = config.configure()
        build = home / "envs" / f".build-{SHA}-dead"
        (build / "lib").mkdir(parents=True)
        (build / "lib" / "half.py").write_text("x" * 1000)
        (home / "envs" / ".locks").mkdir()
        lock = home / "envs" / ".locks" / f"{SHA}.lock"
        lock.touch()
        (home / "store" / "tmp").mkdir(parents=True)
        partial = home / "store" / "tmp" / ".part-killed"
        partial.write_bytes(b"y" * 10)
        old(partial)
        fresh = home / "store" / "tmp" / ".part-downloading"  # a download in progress: not debris
        fresh.write_bytes(b"z")
        unused = home / "envs" / ("cd" * 32)
        unused.mkdir()
        (unused / ".ready").touch()
        old(unused / ".ready")

        report = examine(ctx)
        assert report.needs_attention
        builds = finding(report, "builds")
        assert builds.status == ATTENTION and builds.items == [str(build), str(lock)]
        assert "1.0 kB" in builds.summary and builds.why and builds.fix.startswith("--fix")
        assert finding(report, "temporary files").items == [str(partial)]
        assert finding(report, "unused environments").items == [str(unused)]
        assert build.exists() and partial.exists() and unused.exists()  # without --fix nothing changes

        fixed = examine(ctx, fix=True)
        assert {c: s for c, s in statuses(fixed).items() if s != OK} == {
            "builds": FIXED, "temporary files": FIXED, "unused environments": FIXED,
        }  # fmt: skip
        assert not fixed.needs_attention
        assert not build.exists() and not lock.exists() and not partial.exists() and not unused.exists()
        assert fresh.exists()
        assert set(statuses(examine(ctx)).values()) == {OK}

    def test_a_missing_environment_is_rebuilt(self, home, artifacts):
        ctx = config.configure()
        model = Model.create_model(**MODEL)
        ctx.model_db_service().store_project(project_name="doctor", description="d")
        record = store_deployment(
            Services.from_context(),
            model_id=model.model_id,
            source_path=artifacts["wheel"],
            project_name="doctor",
        )
        envs = ctx.environment_manager()
        env = envs.get(record.sha256)
        for path in sorted(env.path.rglob("*"), reverse=True):
            path.unlink() if not path.is_dir() or path.is_symlink() else path.rmdir()
        env.path.rmdir()
        found = finding(examine(ctx), "missing environments")
        assert found.status == ATTENTION
        assert found.items == [
            f"deployment {record.deployment_id} (model {model.model_id}, version {record.version})"
        ]
        assert finding(examine(ctx, fix=True), "missing environments").status == FIXED
        assert envs.get(record.sha256) is not None
        assert finding(examine(ctx), "missing environments").status == OK

    def test_an_unrecorded_prefect_deployment_is_deleted(self, home, tmp_path):
        ctx = config.configure()
        scheduling = ctx.scheduling_service()
        scheduling.create_project("doctor")
        flow_id = scheduling.register_flow(
            FlowRegistration(
                model_id=999, version="1.0", project_name="doctor", flow_name="orphan-flow",
                entrypoint="orphan.flow", environment=tmp_path, parameter_schema={"type": "object", "properties": {}},
            )
        )  # fmt: skip
        assert finding(examine(ctx), "prefect deployments").status == OK  # younger than --min-age
        found = finding(examine(ctx, min_age=timedelta(0)), "prefect deployments")
        assert found.status == ATTENTION and found.items == [f"doctor-999-1.0 ({flow_id})"]
        assert finding(examine(ctx, fix=True, min_age=timedelta(0)), "prefect deployments").status == FIXED
        from prefect.exceptions import ObjectNotFound

        with pytest.raises(ObjectNotFound):
            scheduling.read_flow(flow_id)

    def test_an_unreachable_prefect_api_and_an_unwritable_results_directory(self, home, monkeypatch):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        monkeypatch.setenv("LUME_PREFECT__API_URL", f"http://127.0.0.1:{port}/api")
        (home / "a-file").write_text("")
        monkeypatch.setenv("LUME_PREFECT__RESULTS_PATH", str(home / "a-file" / "results"))
        report = examine(config.configure(), fix=True)
        api = finding(report, "prefect api")
        assert (
            api.status == ATTENTION
            and f"127.0.0.1:{port}" not in api.fix
            and "does not answer" in api.summary
        )
        assert finding(report, "prefect deployments").status == SKIPPED
        results = finding(report, "results directory")
        assert results.status == ATTENTION and "not writable" in results.summary

    def test_a_database_without_the_schema_is_upgraded(self, home, monkeypatch):
        monkeypatch.setenv("LUME_MODEL_DB__URL", f"sqlite:///{home / 'fresh.db'}")
        ctx = config.configure()
        report = examine(ctx)
        assert finding(report, "schema").status == ATTENTION
        assert "needs 0" in finding(report, "schema").summary
        assert finding(report, "unused environments").status == SKIPPED
        assert finding(examine(ctx, fix=True), "schema").status == FIXED
        assert finding(examine(ctx), "schema").status == OK


class TestCommand:
    def test_exit_code_text_and_json(self, home):
        envs = home / "envs"
        (envs / f".build-{SHA}-dead").mkdir(parents=True)
        runner = CliRunner()
        found = runner.invoke(cli, ["doctor"])
        assert found.exit_code == 1, found.output
        assert "[NEEDS ATTENTION] builds:" in found.output and "--fix removes them" in found.output
        assert "Something needs attention." in found.output
        as_json = runner.invoke(cli, ["doctor", "--json"])
        data = json.loads(as_json.output)
        assert as_json.exit_code == 1 and data["ok"] is False
        assert [f["items"] for f in data["findings"] if f["check"] == "builds"] == [
            [str(envs / f".build-{SHA}-dead")]
        ]
        fixed = runner.invoke(cli, ["doctor", "--fix"])
        assert fixed.exit_code == 0, fixed.output
        assert "[fixed] builds:" in fixed.output and "Nothing needs attention." in fixed.output
        assert runner.invoke(cli, ["doctor"]).exit_code == 0

    def test_a_bad_min_age_is_a_usage_error(self, home):
        result = CliRunner().invoke(cli, ["doctor", "--min-age", "soon"])
        assert result.exit_code == 2 and "'soon'" in result.output
