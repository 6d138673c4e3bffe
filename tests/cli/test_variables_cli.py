"""`deployments variables`, `deployments check-mapping` and `deployments show`'s variables, on real databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import deployment_fields, make_model, make_project
from test_history_cli import Run, make_runner, url_of

from lume_services.variables.formats import read_variables

VARIABLES = read_variables(
    """\
input_variables:
  QUAD:IN20:425:BACT: {type: scalar, default: 0.5, range: [-10, 10], units: kG}
  gun_phase: {type: scalar, default: 12.0, is_constant: true}
output_variables:
  sigma_x: {type: scalar, units: mm}
""",
    "my_model/variables.yml",
)
MAPPING = """\
input_variables:
  QUAD:IN20:425:BACT:
    symbols: [QUAD:IN20:425:BACT]
    formula: QUAD:IN20:425:BACT
    proto: ca
output_variables:
  OTRS:IN20:571:XRMS:
    symbols: [sigma_x]
    formula: sigma_x * 1000
    proto: pva
"""


@pytest.fixture
def run(model_db, lume_home: Path) -> Run:
    return make_runner({"LUME_MODEL_DB__URL": url_of(model_db)})


@pytest.fixture
def deployments(service) -> tuple[int, int]:
    model_id = make_model(service)
    with_vars = service.store_deployment(**deployment_fields(model_id), variables=VARIABLES)
    return with_vars, service.store_deployment(**deployment_fields(model_id))


class TestVariables:
    def test_table_json_and_none(self, run, deployments):
        with_vars, without = deployments
        table = run("deployments", "variables", str(with_vars)).stdout
        assert "Read from my_model/variables.yml (lume-model-1):" in table
        assert "input      QUAD:IN20:425:BACT  scalar  0.5      [-10, 10]  kG" in table
        assert "gun_phase" in table and "yes" in table
        data = json.loads(run("deployments", "variables", str(with_vars), "--json").stdout)
        assert data == {"deployment_id": with_vars, **VARIABLES.stored()}
        assert "declares no variables" in run("deployments", "variables", str(without)).stdout
        run("deployments", "variables", "999999", code=1)

    def test_show_includes_them(self, run, deployments):
        out = run("deployments", "show", str(deployments[0])).stdout
        assert "2 input(s), 1 output(s) from my_model/variables.yml" in out and "sigma_x" in out
        shown = json.loads(run("deployments", "show", str(deployments[0]), "--json").stdout)
        assert shown["variables"]["inputs"]["QUAD:IN20:425:BACT"]["range"] == [-10.0, 10.0]
        assert "(none declared)" in run("deployments", "show", str(deployments[1])).stdout


class TestCheckMapping:
    def test_clean_mapping_exits_0(self, run, deployments, tmp_path):
        path = tmp_path / "pv_mapping.yaml"
        path.write_text(MAPPING)
        out = run("deployments", "check-mapping", str(deployments[0]), str(path)).stdout
        assert "every input of deployment" in out

    def test_problems_exit_1_with_the_list(self, run, deployments, tmp_path):
        path = tmp_path / "pv_mapping.yaml"
        path.write_text(MAPPING.replace("symbols: [sigma_x]", "symbols: [sigma_y]"))
        result = run("deployments", "check-mapping", str(deployments[0]), str(path), code=1)
        assert "2 problem(s)" in result.stdout and "'sigma_y' is not an output of the model" in result.stdout
        assert "its formula uses sigma_x, which its symbols do not declare" in result.stdout
        data = json.loads(run("deployments", "check-mapping", str(deployments[0]), str(path), "--json", code=1).stdout)
        assert data["ok"] is False and data["problems"][0]["name"] == "OTRS:IN20:571:XRMS"

    def test_a_model_without_variables_needs_nothing_mapped_but_knows_no_names(self, run, deployments, tmp_path):
        path = tmp_path / "pv_mapping.yaml"
        path.write_text(MAPPING)
        result = run("deployments", "check-mapping", str(deployments[1]), str(path), code=1)
        assert "the model has no input of this name (its inputs: (none))" in result.stdout

    def test_a_missing_file_is_a_usage_error(self, run, deployments, tmp_path):
        run("deployments", "check-mapping", str(deployments[0]), str(tmp_path / "nope.yaml"), code=2)


class TestFlowsRun:
    def test_inputs_outside_the_variables_submit_nothing(self, run, service, deployments):
        project = make_project(service)
        flow_id = service.store_flow(
            flow_id="not-in-prefect", flow_name="f", project_name=project, deployment_id=deployments[0]
        )
        # The flow id is not a Prefect deployment: reaching Prefect would fail differently.
        result = run("flows", "run", flow_id, "--parameters", '{"QUAD:IN20:425:BACT": 11}', code=1)
        assert "Invalid input 'QUAD:IN20:425:BACT' 11: it is outside its range [-10, 10] kG." in result.stderr
        assert "Nothing was submitted." in result.stderr
        result = run("flows", "run", flow_id, "--parameters", '{"gun_phase": 0}', "--validate", "warn", code=1)
        assert "a constant (12.0)" in result.stderr


class TestTags:
    def test_tag_list_and_show_models_and_deployments(self, run, service, deployments):
        model_id = service.get_deployment(deployment_id=deployments[0]).model_id
        out = run("models", "tag", str(model_id), "stage=production", "email=a@slac.stanford.edu").stdout
        assert out == f"Model {model_id} tags: email=a@slac.stanford.edu, stage=production\n"
        run("deployments", "tag", str(deployments[0]), "ready_to_deploy=true", "note=a=b")
        listed = json.loads(run("models", "list", "--tag", "stage=production", "--json").stdout)
        assert [i["model"]["model_id"] for i in listed["items"]] == [model_id]
        assert "No models match." in run("models", "list", "--tag", "stage=production", "--tag", "email=x").stdout
        shown = json.loads(run("deployments", "list", "--tag", "ready_to_deploy=true", "--json").stdout)
        assert [d["tags"] for d in shown["items"]] == [{"ready_to_deploy": "true", "note": "a=b"}]
        assert "Tags:" in run("models", "show", str(model_id)).stdout
        assert "note=a=b, ready_to_deploy=true" in run("deployments", "show", str(deployments[0])).stdout
        removed = json.loads(run("models", "tag", str(model_id), "--remove", "email", "--json").stdout)
        assert removed["tags"] == {"stage": "production"}

    def test_usage_errors(self, run, deployments):
        run("models", "list", "--tag", "stage", code=2)
        run("deployments", "tag", str(deployments[0]), code=2)
        result = run("deployments", "tag", str(deployments[0]), "a\x01b=c", code=1)
        assert "control characters" in result.stderr
