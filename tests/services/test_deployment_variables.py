"""Variables stored per deployment on every dialect: written with it, loaded with it, exported, deleted with it."""

from __future__ import annotations

import math

import pytest
from factories import deployment_fields, make_model, make_project, registry_snapshot
from sqlalchemy import func, select

from lume_services.errors import (
    DeploymentNotFoundError,
    FlowAlreadyExistsError,
    ValidationError,
    VariablesConflictError,
)
from lume_services.services.models.db.schema import DeploymentVariables
from lume_services.variables import Variables
from lume_services.variables.formats import read_variables

VARIABLES = read_variables(
    """\
input_variables:
  QUAD:IN20:425:BACT: {type: scalar, default: 0.5, range: [-10, .inf], units: kG}
  profile: {type: array, default: [1, 2, 3], shape: [3]}
output_variables:
  screen: {type: image, x_label: x, axis_units: [mm, mm]}
""",
    "my_model/variables.yml",
)


def rows(model_db) -> int:
    with model_db.session(write=False) as s:
        return s.execute(select(func.count()).select_from(DeploymentVariables)).scalar_one()


def store_with_flow(service, model_id, project, **overrides):
    fields = deployment_fields(model_id, **overrides)
    return service.store_deployment_with_flow(
        **fields, flow_id=f"flow-{fields['version']}", flow_name="f", project_name=project, variables=VARIABLES
    )[0]


class TestStored:
    def test_loaded_with_the_deployment_in_full(self, service):
        model_id, project = make_model(service), make_project(service)
        deployment_id = store_with_flow(service, model_id, project)
        loaded = service.load_deployment(model_id=model_id, deployment_id=deployment_id)
        assert loaded.variables == VARIABLES
        assert loaded.variables.inputs["QUAD:IN20:425:BACT"].range == (-10.0, math.inf)
        assert service.get_variables(deployment_id) == VARIABLES

    def test_store_deployment_without_flow_and_without_variables(self, service):
        model_id = make_model(service)
        with_vars = service.store_deployment(**deployment_fields(model_id), variables=VARIABLES)
        without = service.store_deployment(**deployment_fields(model_id))
        assert service.get_variables_of([with_vars, without]) == {with_vars: VARIABLES, without: Variables()}
        assert not service.load_deployment(model_id=model_id, deployment_id=without).variables.declared

    def test_the_same_deployment_again_keeps_one_row(self, service, model_db):
        model_id, project = make_model(service), make_project(service)
        fields = dict(version="1.0.0", sha256="a" * 64)
        first = store_with_flow(service, model_id, project, **fields)
        assert store_with_flow(service, model_id, project, **fields) == first
        assert rows(model_db) == 1

    def test_deleted_with_its_deployment(self, service, model_db):
        model_id = make_model(service)
        deployment_id = service.store_deployment(**deployment_fields(model_id), variables=VARIABLES)
        service.delete_deployment(deployment_id)
        assert rows(model_db) == 0
        with pytest.raises(DeploymentNotFoundError):
            service.get_variables(deployment_id)

    def test_not_variables_is_refused_before_anything_is_stored(self, service, model_db):
        model_id = make_model(service)
        with pytest.raises(ValidationError, match="expected a lume_services.variables.Variables"):
            service.store_deployment(**deployment_fields(model_id), variables={"inputs": []})
        assert service.get_deployments(model_id=model_id) == [] and rows(model_db) == 0

    def test_a_failure_later_in_the_transaction_leaves_no_variables(self, service, model_db):
        model_id, project = make_model(service), make_project(service)
        store_with_flow(service, model_id, project, version="1.0.0")
        with pytest.raises(FlowAlreadyExistsError):  # the flow id is taken: the whole unit of work is undone
            service.store_deployment_with_flow(
                **deployment_fields(model_id, version="2.0.0"), flow_id="flow-1.0.0", flow_name="f",
                project_name=project, variables=VARIABLES,
            )  # fmt: skip
        assert rows(model_db) == 1 and len(service.get_deployments(model_id=model_id)) == 1


class TestExportImport:
    def test_round_trip_reproduces_the_variables(self, service, model_db):
        model_id, project = make_model(service), make_project(service)
        store_with_flow(service, model_id, project)
        records = list(service.export_records())
        assert [r["kind"] for r in records].count("deployment_variables") == 1
        before = registry_snapshot(model_db)
        service.import_records(records)  # identical rows again are kept
        assert registry_snapshot(model_db) == before

    def test_other_variables_for_a_deployment_are_a_conflict(self, service):
        model_id, project = make_model(service), make_project(service)
        store_with_flow(service, model_id, project)
        records = [r for r in service.export_records() if r["kind"] in ("header", "deployment_variables")]
        records[1]["inputs"] = records[1]["inputs"][:1]
        with pytest.raises(VariablesConflictError, match="already has other variables"):
            service.import_records(records)

    @pytest.mark.parametrize(
        "change, says",
        [
            ({"inputs": [{"kind": "scalar"}]}, "lists of variables with a name and a kind"),
            ({"inputs": [{"name": "a", "kind": "tensor"}]}, "expected one of"),
            ({"inputs": [{"name": "a", "kind": "scalar", "range": [3, 1]}]}, "min is above its max"),
            ({"source_file": None}, "a value is required"),
        ],
    )
    def test_bad_records_are_refused(self, service, change, says):
        model_id = make_model(service)
        deployment_id = service.store_deployment(**deployment_fields(model_id))
        record = {"kind": "deployment_variables", "deployment_id": deployment_id, **VARIABLES.stored(), **change}
        header = next(iter(service.export_records()))
        with pytest.raises(ValidationError, match=says):
            service.import_records([header, record])
        assert not service.get_variables(deployment_id).declared

    def test_version_1_exports_still_import(self, service):
        header = {**next(iter(service.export_records())), "version": 1}
        assert service.import_records([header])["header"] == 1
