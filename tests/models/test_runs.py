"""Model.run / run_and_return on a real Prefect server: inline and by a worker process."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID

import pytest
from e2e_marks import on_every_dialect
from worker_process import running_worker

from lume_services import config
from lume_services.errors import (
    FlowFailedError,
    RunTimeoutError,
    SchedulingError,
    TaskNotInFlowError,
    ValidationError,
)
from lume_services.models import Model
from lume_services.services.scheduling import runs

MODEL = dict(
    author="Jackie Garrahan", laboratory="slac", facility="lcls", beampath="cu_hxr", description="runs"
)
pytestmark = pytest.mark.slow


@pytest.fixture
def deployed(registry, runner_artifact, monkeypatch):
    """A stored runner deployment; runs execute inline unless a test says otherwise."""
    monkeypatch.setenv("LUME_PREFECT__EXECUTOR", "inline")
    ctx = config.configure()
    model = Model.create_model(**MODEL)
    ctx.model_db_service().store_project(project_name="runs", description="run tests")
    model.store_deployment(runner_artifact, project_name="runs")
    return model


class TestRunAndReturn:
    @on_every_dialect
    def test_returns_the_flow_result_and_a_task_result(self, deployed):
        model = Model(model_id=deployed.model_id)  # lazily loads the latest deployment
        assert model.run_and_return({"input1": 1.5, "input2": 2.0}) == {"sum": 5.0, "inputs": [1.5, 2.0]}
        assert model.run_and_return({"input1": 4.0}, task_name="double") == 8.0
        second, first = model.get_results()  # recorded, newest first, with the flow's result
        assert (first.parameters, first.result, first.state) == ({"input1": 1.5, "input2": 2.0},
                                                                {"sum": 5.0, "inputs": [1.5, 2.0]}, "completed")
        assert second.result == {"sum": 10.0, "inputs": [4.0, 2.0]} and second.finished is not None
        assert first.actor == model.model_db_service.actor

    def test_unknown_task_names_the_flows_tasks(self, deployed):
        with pytest.raises(TaskNotInFlowError, match="add, double"):
            deployed.run_and_return({"input1": 1.0}, task_name="evaluate")

    @pytest.mark.parametrize(
        "parameters, problem",
        [
            ({"input3": 1.0}, "no parameter input3"),  # the flow's own schema
            ({"sleep": "abc"}, "not of type"),
            ({"input1": 101.0}, r"input 'input1' 101.0: it is outside its range \[-100, 100\] A"),  # its variables
        ],
    )
    def test_wrong_parameters_submit_nothing(self, deployed, parameters, problem):
        scheduling = config.context.scheduling_service()
        before = _run_count(scheduling, deployed)
        with pytest.raises(ValidationError, match=problem):
            deployed.run_and_return(parameters)
        assert _run_count(scheduling, deployed) == before

    def test_variables_are_stored_and_validate_warn_logs_and_runs(self, deployed, caplog):
        inputs = deployed.deployment.variables.inputs
        assert list(inputs) == ["input1", "input2"] and inputs["input1"].range == (-100.0, 100.0)
        assert deployed.deployment.variables.source_file == "runner_model/variables.yml"
        assert deployed.run_and_return({"input1": 150.0}, validate="warn") == {"sum": 302.0, "inputs": [150.0, 2.0]}
        assert "input 'input1' 150.0 is outside its range [-100, 100] A" in caplog.text

    def test_failing_flow_raises_with_prefects_message_and_run_id(self, deployed):
        with pytest.raises(FlowFailedError, match="the model refused these inputs") as info:
            deployed.run_and_return({"fail": True})
        run = config.context.scheduling_service().read_run(info.value.flow_run_id)
        assert run.state.is_failed()
        [record] = deployed.get_results(state="failed")
        assert record.prefect_run_id == info.value.flow_run_id and "refused these inputs" in record.error

    def test_timeout_cancels_the_run_on_the_server(self, deployed):
        with pytest.raises(RunTimeoutError) as info:
            deployed.run_and_return({"sleep": 120.0}, timeout=3)
        run = config.context.scheduling_service().read_run(info.value.flow_run_id)
        assert run.state.is_cancelled()
        assert [r.state for r in deployed.get_results(state=None)] == ["cancelled"]

    def test_run_returns_the_id_at_once(self, deployed):
        run_id = deployed.run({"input1": 2.0})
        scheduling = config.context.scheduling_service()
        deadline = time.monotonic() + 120
        while not scheduling.read_run(run_id).state.is_final() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert scheduling.read_run(run_id).state.is_completed()


class TestClaim:
    def test_a_run_taken_elsewhere_is_not_executed_again(self, deployed):
        from prefect.states import Cancelled

        scheduling = config.context.scheduling_service()
        flow_id = deployed.load_deployment().flow.flow_id
        with scheduling._client() as client:
            run = client.create_flow_run_from_deployment(UUID(flow_id), parameters={})
            try:
                runs.claim(client, run.id)  # as a worker would
                with pytest.raises(SchedulingError, match="could not be claimed"):
                    runs.claim(client, run.id)
            finally:
                client.set_flow_run_state(run.id, Cancelled(), force=True)

    def test_a_deployment_without_a_process_command_names_the_fix(self):
        docker = SimpleNamespace(name="test-1-0.1.0", job_variables={"image": "registry/x:1"})
        with pytest.raises(SchedulingError, match="LUME_PREFECT__EXECUTOR=worker"):
            runs.python_of(docker)
        spaced = SimpleNamespace(
            name="n", job_variables={"command": runs.engine_command(Path("/a b/python"))}
        )
        assert runs.python_of(spaced) == Path("/a b/python")


def _run_count(scheduling, model) -> int:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    flow_id = model.load_deployment().flow.flow_id
    with scheduling._client() as client:
        return len(
            client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[flow_id])))
        )


class TestWorker:
    def test_a_separate_worker_process_runs_it_and_results_are_read_back(
        self, deployed, prefect_server, monkeypatch
    ):
        monkeypatch.setenv("LUME_PREFECT__EXECUTOR", "worker")
        config.configure()
        with running_worker():  # stopped with one SIGTERM, leaving no process behind
            result = Model(model_id=deployed.model_id).run_and_return({"input1": 3.0}, timeout=180)
        assert result == {"sum": 8.0, "inputs": [3.0, 2.0]}

    def test_the_worker_starts_a_run_when_the_server_reports_it_scheduled_not_at_its_next_poll(
        self, deployed, prefect_server, monkeypatch
    ):
        monkeypatch.setenv("LUME_PREFECT__EXECUTOR", "worker")
        config.configure()
        model = Model(model_id=deployed.model_id)
        # It polls once an hour: only the flow-run event can make it start these within the timeout.
        with running_worker(query_seconds="3600", wait_until_listening=True):
            first = model.run_and_return({"input1": 3.0}, timeout=90)
            second = model.run_and_return({"input1": 4.0}, timeout=90)
        assert (first, second) == ({"sum": 8.0, "inputs": [3.0, 2.0]}, {"sum": 10.0, "inputs": [4.0, 2.0]})
