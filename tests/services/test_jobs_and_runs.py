"""The server's jobs (claimed once, heartbeated, failed when their runner went quiet) and run records."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from lume_services.errors import JobNotFoundError, RunNotFoundError, ValidationError
from lume_services.services.models.db.schema import Job, utcnow

REQUEST = {"model_id": 1, "source_path": "https://example.org/m-0.1.0.tar.gz", "project_name": "p"}


class TestJobs:
    def test_a_job_runs_once_to_its_outcome(self, service) -> None:
        job = service.with_actor("physicist").submit_job("store_deployment", REQUEST)
        assert (job.state, job.actor, job.request) == ("queued", "physicist", REQUEST)
        claimed = service.claim_job(worker="w1", lease=60)
        assert claimed.job_id == job.job_id and claimed.state == "running" and claimed.worker == "w1"
        assert service.claim_job(worker="w2", lease=60) is None  # nothing else queued
        assert service.heartbeat_job(job.job_id, worker="w1", step="install")
        assert not service.heartbeat_job(job.job_id, worker="w2")  # not its job
        assert service.get_job(job.job_id).step == "install"
        assert service.finish_job(job.job_id, worker="w1", result={"deployment_id": 3})
        assert not service.finish_job(job.job_id, worker="w1", result={})  # finished once
        done = service.get_job(job.job_id)
        assert (done.state, done.result, done.done) == ("succeeded", {"deployment_id": 3}, True)

    def test_an_upload_is_claimed_for_the_server_that_received_it(self, service) -> None:
        job = service.submit_job("store_deployment", REQUEST, worker="receiver")
        assert (job.state, job.worker) == ("running", "receiver") and job.heartbeat is not None
        assert service.claim_job(worker="other-replica", lease=60) is None  # never run elsewhere
        assert service.finish_job(job.job_id, worker="receiver", result={"deployment_id": 1})

    def test_concurrent_runners_never_claim_one_job_twice(self, service) -> None:
        jobs = [service.submit_job("store_deployment", REQUEST).job_id for _ in range(6)]
        claimed: list[int] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def runner(n: int) -> None:
            try:
                while (job := service.claim_job(worker=f"w{n}", lease=60)) is not None:
                    with lock:
                        claimed.append(job.job_id)
            except BaseException as exc:  # shown by the assertion below, not lost with the thread
                errors.append(exc)

        threads = [threading.Thread(target=runner, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        # A runner may find nothing while another holds a queued job's lock (SKIP LOCKED) and then
        # retries its transaction: what is left is claimed now; nothing is ever claimed twice.
        while (job := service.claim_job(worker="last", lease=60)) is not None:
            claimed.append(job.job_id)
        assert sorted(claimed) == jobs

    def test_a_job_whose_runner_went_quiet_is_failed_not_left_running(self, service, model_db) -> None:
        job = service.submit_job("store_deployment", REQUEST)
        service.claim_job(worker="killed", lease=60)
        with model_db.engine.begin() as conn:  # the runner's server was SIGKILLed two minutes ago
            conn.execute(update(Job.__table__).values(heartbeat=utcnow() - timedelta(seconds=120)))
        assert service.claim_job(worker="next", lease=60) is None
        failed = service.get_job(job.job_id)
        assert failed.state == "failed" and failed.error_type == "JobInterruptedError"
        assert "stopped before it finished" in failed.error and failed.finished is not None
        assert not service.finish_job(job.job_id, worker="killed", result={})  # too late: it stays failed

    @pytest.mark.parametrize("dialect", ["sqlite"])
    def test_bad_input(self, service) -> None:
        with pytest.raises(ValidationError, match="job kind"):
            service.submit_job("rm -rf", {})
        with pytest.raises(ValidationError, match="worker"):
            service.claim_job(worker="", lease=1)
        with pytest.raises(JobNotFoundError):
            service.get_job(12345)
        assert service.list_jobs().items == []


class TestRuns:
    def test_a_run_is_recorded_then_finished_with_its_result(self, service) -> None:
        run = service.with_actor("operator").record_run(
            prefect_run_id="0b7e-run", model_id=1, deployment_id=2, flow_id="flow-1", parameters={"x": 1.5})
        assert (run.state, run.actor, run.parameters) == ("submitted", "operator", {"x": 1.5})
        done = service.finish_run(run.run_id, state="completed", result={"y": [1, 2], "z": float("nan")})
        assert done.state == "completed" and done.finished is not None
        assert "repr" in done.result  # NaN is not JSON: kept as its repr
        other = service.record_run(prefect_run_id="1c8f-run", model_id=1, deployment_id=3, flow_id="f",
                                   parameters={})  # fmt: skip
        service.finish_run(other.run_id, state="failed", error="the model refused")
        assert [r.run_id for r in service.list_runs(model_id=1).items] == [other.run_id, run.run_id]
        assert [r.run_id for r in service.list_runs(deployment_id=2).items] == [run.run_id]
        assert service.get_run(other.run_id).error == "the model refused"
        page = service.list_runs(limit=1)
        assert page.next_after == other.run_id
        assert [r.run_id for r in service.list_runs(limit=1, after=page.next_after).items] == [run.run_id]

    @pytest.mark.parametrize("dialect", ["sqlite"])
    def test_bad_input(self, service) -> None:
        with pytest.raises(RunNotFoundError):
            service.finish_run(999, state="completed")
        with pytest.raises(ValidationError, match="run state"):
            service.finish_run(1, state="exploded")


@pytest.mark.parametrize("dialect", ["sqlite"])
@pytest.mark.parametrize("parameters", [None, [1, 2], "x=1"])
def test_a_runs_parameters_must_be_a_mapping(service, parameters) -> None:
    """Found by the property test: None was stored, then refused by the record (not our error)."""
    with pytest.raises(ValidationError, match="expected a mapping"):
        service.record_run(prefect_run_id="r-1", model_id=1, deployment_id=1, flow_id="f", parameters=parameters)
    assert service.list_runs().items == []
