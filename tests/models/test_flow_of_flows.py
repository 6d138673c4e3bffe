"""Flows of flows: YAML validation, storage, and composite runs on a real Prefect server."""

from __future__ import annotations

import pytest
from e2e_marks import on_every_dialect

from lume_services import config
from lume_services.errors import FlowFailedError, FlowNotFoundError, ValidationError
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
