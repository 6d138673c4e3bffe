"""Flows of flows: YAML validation, storage, and composite runs on a real Prefect server."""

from __future__ import annotations

import json

import pytest
from e2e_marks import on_every_dialect
from worker_process import running_worker

from lume_services import config
from lume_services.errors import (
    DeploymentConflictError,
    FlowAlreadyExistsError,
    FlowFailedError,
    FlowNotFoundError,
    RunTimeoutError,
    ValidationError,
)
from lume_services.flows.compose import compose, run_flow_of_flows
from lume_services.flows.spec import FlowOfFlowsSpec
from lume_services.models import Model

pytestmark = pytest.mark.slow


@pytest.fixture
def two_flows(registry, artifacts, runner_artifact, monkeypatch):
    """'fixture-flow' and 'runner-flow' registered in project 'fof'; runs inline."""
    monkeypatch.setenv("LUME_PREFECT__EXECUTOR", "inline")
    ctx = config.configure()
    ctx.model_db_service().store_project(project_name="fof", description="flows of flows")
    for description, artifact in (("first", artifacts["sdist"]), ("second", runner_artifact)):
        model = Model.create_model(
            author="a", laboratory="slac", facility="lcls", beampath="b", description=description
        )
        model.store_deployment(artifact, project_name="fof")
    return ctx


def spec(*steps, name="pipeline") -> FlowOfFlowsSpec:
    return FlowOfFlowsSpec.parse({"name": name, "project_name": "fof", "composing_flows": list(steps)})


MAP_SUM = {"input1": {"parent_flow_name": "fixture-flow", "map_type": "raw", "attribute_index": ["sum"]}}


class TestCompose:
    @on_every_dialect
    def test_stored_in_position_order_with_mapped_parameters(self, two_flows):
        parent = compose(
            spec({"name": "fixture-flow"}, {"name": "runner-flow", "mapped_parameters": MAP_SUM})
        )
        steps = two_flows.model_db_service().get_flow_of_flows(parent_flow_id=parent)
        assert [(s.position, s.flow.flow_name) for s in steps] == [(1, "fixture-flow"), (2, "runner-flow")]
        assert steps[0].mapped_parameters is None
        assert steps[1].mapped_parameters["input1"]["attribute_index"] == ["sum"]
        composite = two_flows.model_db_service().get_flow(flow_id=parent)
        assert composite.composite and composite.flow_name == "pipeline"
        assert (
            compose(spec({"name": "fixture-flow"}, {"name": "runner-flow", "mapped_parameters": MAP_SUM}))
            == parent
        )

    def test_from_yaml_file(self, two_flows, tmp_path):
        path = tmp_path / "pipeline.yaml"
        path.write_text(
            "name: from-file\nproject_name: fof\ncomposing_flows:\n  - name: fixture-flow\n  - name: runner-flow\n"
        )
        parent = compose(path)
        assert len(two_flows.model_db_service().get_flow_of_flows(parent_flow_id=parent)) == 2

    @pytest.mark.parametrize(
        "steps, error, message",
        [
            ([{"name": "no-such-flow"}], FlowNotFoundError, "no-such-flow"),
            ([{"name": "fixture-flow"}, {"name": "runner-flow", "mapped_parameters": {
                "input9": {"parent_flow_name": "fixture-flow"}}}], ValidationError, "no parameter 'input9'"),
            ([{"name": "runner-flow", "mapped_parameters": MAP_SUM}, {"name": "fixture-flow"}],
             ValidationError, "not an earlier step"),
            ([{"name": "fixture-flow"}, {"name": "runner-flow", "mapped_parameters": {
                "input1": {"parent_flow_name": "fixture-flow", "parent_task_name": "evaluate"}}}],
             ValidationError, "no task 'evaluate'; its tasks are add, double"),
        ],
    )  # fmt: skip
    def test_invalid_compositions_store_nothing(self, two_flows, steps, error, message):
        with pytest.raises(error, match=message):
            compose(spec(*steps, name="invalid"))
        svc = two_flows.model_db_service()
        assert [f for f in svc.get_flows() if f.composite] == []

    def test_other_steps_under_a_stored_name_are_refused_before_prefect_is_touched(self, two_flows):
        parent = compose(spec({"name": "fixture-flow"}, {"name": "runner-flow"}, name="fixed"))
        scheduling = two_flows.scheduling_service()
        before = _prefect_deployments(scheduling, "fof-composite-fixed")
        with pytest.raises(FlowAlreadyExistsError, match="with other steps"):
            compose(spec({"name": "runner-flow"}, name="fixed"))
        assert _prefect_deployments(scheduling, "fof-composite-fixed") == before == [parent]
        assert len(two_flows.model_db_service().get_flow_of_flows(parent_flow_id=parent)) == 2

    def test_a_flow_of_flows_is_not_a_step(self, two_flows):
        parent = compose(spec({"name": "fixture-flow"}, name="inner"))
        with pytest.raises(ValidationError, match="it is the flow of flows 'inner'"):
            compose(spec({"flow_id": parent}, name="outer"))
        with pytest.raises(ValidationError, match="'inner': it is a flow of flows"):
            compose(spec({"name": "inner"}, name="outer"))
        assert [f.flow_name for f in two_flows.model_db_service().get_flows(composite=True)] == ["inner"]

    def test_bad_yaml_shape(self):
        with pytest.raises(ValidationError, match="composing_flows"):
            FlowOfFlowsSpec.parse({"name": "x", "project_name": "fof", "composing_flows": []})


class TestRun:
    def test_outputs_feed_later_steps(self, two_flows):
        mapped_task = {"input2": {"parent_flow_name": "runner-flow", "parent_task_name": "double"}}
        parent = compose(
            spec(
                {"name": "fixture-flow"},
                {"name": "runner-flow", "mapped_parameters": MAP_SUM},
                {"name": "runner-flow", "mapped_parameters": mapped_task},
            )
        )
        out = run_flow_of_flows(parent, {"fixture-flow": {"input1": 1.0, "input2": 1.0}}, timeout=600)
        # fixture: 2*1+1 = 3 -> runner step 2: input1=3 -> 2*3+2 = 8, task double = 6
        # runner step 3: input1 default 1, input2 = 6 -> 2*1+6 = 8
        assert out["steps"]["fixture-flow"]["sum"] == 3.0
        assert out["result"] == {"sum": 8.0, "inputs": [1.0, 6.0]}

    def test_a_failing_child_stops_the_composite_naming_it(self, two_flows):
        parent = compose(spec({"name": "fixture-flow"}, {"name": "runner-flow"}, name="failing"))
        with pytest.raises(FlowFailedError, match="runner-flow"):
            run_flow_of_flows(parent, {"runner-flow": {"fail": True}}, timeout=600)

    def test_a_step_input_outside_its_variables_submits_nothing(self, two_flows):
        parent = compose(spec({"name": "fixture-flow"}, {"name": "runner-flow"}, name="checked"))
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

        with pytest.raises(ValidationError, match=r"input 'input2' 500.0: it is outside its range \[-100, 100\]"):
            run_flow_of_flows(parent, {"runner-flow": {"input2": 500.0}}, timeout=600)
        with two_flows.scheduling_service()._client() as client:
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[parent])))
        assert runs == []

    def test_timeout_cancels_the_running_step_and_the_composite(self, two_flows):
        parent = compose(spec({"name": "runner-flow"}, {"name": "fixture-flow"}, name="slow"))
        with pytest.raises(RunTimeoutError) as info:
            run_flow_of_flows(parent, {"runner-flow": {"sleep": 120.0}}, timeout=10)
        scheduling = two_flows.scheduling_service()
        assert scheduling.read_run(info.value.flow_run_id).state.is_cancelled()
        children = _child_runs(scheduling, info.value.flow_run_id)
        assert [run.state.type.value for run in children] == ["CANCELLED"]  # the second never started

    def test_a_worker_process_runs_the_composite_and_its_steps(self, two_flows, monkeypatch):
        monkeypatch.setenv("LUME_PREFECT__EXECUTOR", "worker")
        config.configure()
        parent = compose(
            spec(
                {"name": "fixture-flow"},
                {"name": "runner-flow", "mapped_parameters": MAP_SUM},
                name="by-worker",
            )
        )
        with running_worker():
            out = run_flow_of_flows(parent, {"fixture-flow": {"input1": 2.0, "input2": 1.0}}, timeout=300)
        assert out["result"] == {"sum": 12.0, "inputs": [5.0, 2.0]}


def _prefect_deployments(scheduling, prefix: str) -> list[str]:
    """Ids of the Prefect deployments whose name starts with ``prefix``."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with scheduling._client() as client:
        found = client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(like_=prefix))
        )
    return [str(d.id) for d in found if d.name.startswith(prefix)]


def _child_runs(scheduling, parent_run_id: str) -> list:
    """The parent's step runs, oldest first (Prefect links them through the parent's task runs)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    with scheduling._client() as client:
        wanted = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_run_id]))
        return client.read_flow_runs(flow_run_filter=wanted, sort=FlowRunSort.START_TIME_ASC)


class TestAsModelVersion:
    """A composition stored as a version of a model: Model(deployment_id=...) loads and runs it."""

    STEPS = ({"name": "fixture-flow"}, {"name": "runner-flow", "mapped_parameters": MAP_SUM})

    def owner(self) -> Model:
        return Model.create_model(
            author="a", laboratory="slac", facility="lcls", beampath="b", description="a pipeline"
        )

    def test_model_deployment_id_loads_and_runs_it(
        self, two_flows
    ):  # storage on every dialect: tests/services
        record = self.owner().compose(spec(*self.STEPS), version="1.0")
        assert record.is_live and record.package_import_name == "lume_services.flows.composite"
        model = Model(deployment_id=record.deployment_id)
        loaded = model.deployment
        assert loaded.flow.composite and loaded.flow.deployment_id == record.deployment_id
        assert [(s.position, s.flow.flow_name) for s in loaded.flow_of_flows] == [
            (1, "fixture-flow"),
            (2, "runner-flow"),
        ]
        out = model.run_and_return({"fixture-flow": {"input1": 1.0, "input2": 1.0}}, timeout=600)
        assert out["result"] == {"sum": 8.0, "inputs": [3.0, 2.0]}  # 2*1+1 = 3, then 2*3+2
        assert out["steps"]["fixture-flow"]["sum"] == 3.0

    def test_same_version_is_idempotent_and_other_steps_conflict(self, two_flows):
        owner = self.owner()
        first = owner.compose(spec(*self.STEPS), version="1.0")
        assert owner.compose(spec(*self.STEPS), version="1.0") == first
        scheduling, svc = two_flows.scheduling_service(), two_flows.model_db_service()
        parent = owner.deployment.flow.flow_id
        prefix = f"fof-{owner.model_id}-1.0"
        assert _prefect_deployments(scheduling, prefix) == [parent]
        with pytest.raises(DeploymentConflictError, match="'1.0'"):
            owner.compose(spec({"name": "runner-flow"}), version="1.0")
        assert _prefect_deployments(scheduling, prefix) == [parent]  # nothing registered
        second = owner.compose(spec({"name": "runner-flow"}), version="2.0")
        assert second.deployment_id != first.deployment_id and second.is_live
        assert not svc.get_deployment(deployment_id=first.deployment_id).is_live

    def test_model_id_without_version_stores_nothing(self, two_flows):
        owner = self.owner()
        with pytest.raises(ValidationError, match="needs both model_id and version"):
            compose(spec(*self.STEPS), model_id=owner.model_id)
        assert owner.deployments == []
        assert two_flows.model_db_service().get_flows(composite=True) == []

    def test_cli_composes_a_model_version_and_shows_its_steps(self, two_flows, tmp_path):
        from click.testing import CliRunner

        from lume_services.cli.main import cli

        owner = self.owner()
        path = tmp_path / "pipeline.yaml"
        path.write_text(
            "name: cli-pipeline\nproject_name: fof\ncomposing_flows:\n  - name: fixture-flow\n  - name: runner-flow\n"
        )
        runner = CliRunner()
        args = [
            "flows",
            "compose",
            str(path),
            "--model-id",
            str(owner.model_id),
            "--version",
            "0.9",
            "--json",
        ]
        composed = runner.invoke(cli, args)
        assert composed.exit_code == 0, (composed.stdout, composed.stderr)
        data = json.loads(composed.stdout)
        assert [s["position"] for s in data["steps"]] == [1, 2]
        record = two_flows.model_db_service().get_deployment(deployment_id=data["deployment_id"])
        assert (record.model_id, record.version, record.source) == (owner.model_id, "0.9", str(path))
        shown = runner.invoke(cli, ["deployments", "show", str(data["deployment_id"])])
        assert "1. fixture-flow -> 2. runner-flow" in shown.stdout
        missing = runner.invoke(cli, ["flows", "compose", str(path), "--version", "1.0"])
        assert missing.exit_code == 1 and "needs both model_id and version" in missing.stderr
        not_live = runner.invoke(cli, ["flows", "compose", str(path), "--not-live"])
        assert not_live.exit_code == 2 and "--model-id" in not_live.stderr
