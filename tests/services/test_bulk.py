"""The bulk path (BulkOps) on real databases: store_models, store_deployments, import/export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import (
    deployment_fields,
    make_deployment,
    make_flow,
    make_model,
    make_project,
    model_fields,
    registry_snapshot,
    sha,
)
from sqlalchemy import event, func, select

from lume_services.errors import (
    ConflictError,
    DeploymentConflictError,
    DeploymentNotFoundError,
    FlowAlreadyExistsError,
    FlowNotFoundError,
    ModelNotFoundError,
    ProjectAlreadyExistsError,
    ProjectNotFoundError,
    ValidationError,
)
from lume_services.services.models.db.db import ModelDB, ModelDBConfig
from lume_services.services.models.db.schema import Deployment, FlowOfFlows, Model
from lume_services.services.models.service import ModelDBService


def count(model_db, table) -> int:
    with model_db.session(write=False) as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


snapshot = registry_snapshot


def statements_during(engine, call) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def populated(service: ModelDBService) -> None:
    """A registry with one of everything, including a nested flow of flows."""
    project = make_project(service, "proj")
    make_project(service, "other", description="another project")
    m1, m2 = make_model(service), make_model(service, author="Someone Else")
    d1 = make_deployment(service, m1, asset_dir="/assets/1")
    d2 = make_deployment(service, m1, is_live=True)
    d3 = make_deployment(service, m2, image=None, is_live=True)
    f1 = make_flow(service, d1, project, flow_id="flow-1")
    f2 = make_flow(service, d2, project, flow_id="flow-2")
    make_flow(service, d3, "other", flow_id="flow-3")
    make_model(service)  # a model without deployments
    service.store_flow_of_flows(
        parent_flow_id="inner",
        flow_name="inner",
        project_name=project,
        composing_flows=[f1, {"flow_id": f2, "mapped_parameters": {"x": {"from": "a", "nested": [1, 2.5]}}}],
    )
    service.store_flow_of_flows(
        parent_flow_id="outer", flow_name="outer", project_name="other", composing_flows=["inner", f1, f1]
    )
    service.store_flow_of_flows(  # a composition stored as a version of model 2
        parent_flow_id="versioned", flow_name="pipeline", project_name=project, composing_flows=[f2, f1],
        deployment=deployment_fields(m2, package_import_name="lume_services.flows.composite", image=None),
    )  # fmt: skip


def composition_record(parent: str, project: str, steps: list[str], **overrides: Any) -> dict[str, Any]:
    """A flow_of_flows import record named like its parent flow."""
    record = {"kind": "flow_of_flows", "parent_flow_id": parent, "flow_name": parent, "project_name": project}
    return {**record, "composing_flows": steps, **overrides}


class TestStoreModels:
    def test_returns_ids_in_input_order(self, service):
        fields = [model_fields() for _ in range(5)]
        ids = service.store_models(fields)
        assert ids == sorted(ids) and len(set(ids)) == 5
        assert [service.get_model(model_id=i).description for i in ids] == [f["description"] for f in fields]

    def test_existing_and_repeated_models_keep_one_id(self, service, model_db):
        existing = make_model(service, description="already there")
        again = model_fields(description="twice")
        ids = service.store_models([model_fields(description="already there"), again, again])
        assert ids[0] == existing and ids[1] == ids[2]
        assert count(model_db, Model) == 2

    def test_batches_commit_one_by_one(self, service, model_db):
        good = [model_fields() for _ in range(4)]
        with pytest.raises(ValidationError, match=r"author \(record 6\)"):
            service.store_models([*good, model_fields(), model_fields(author="")], batch_size=4)
        assert count(model_db, Model) == 4  # the first batch; nothing of the second

    def test_statements_per_batch_do_not_grow_with_the_batch(self, service, model_db):
        def store(n):
            return lambda: service.store_models(model_fields() for _ in range(n))

        store(1)()  # warm: schema check
        assert len(statements_during(model_db.engine, store(2))) == len(
            statements_during(model_db.engine, store(1000))
        )

    @pytest.mark.parametrize("size", [0, 5001, True, "10"])
    def test_batch_size_is_checked(self, service, size):
        with pytest.raises(ValidationError, match="batch_size"):
            service.store_models([model_fields()], batch_size=size)


BAD_MODELS = [
    {"author": ""},
    {"laboratory": "x" * 101},
    {"facility": 7},
    {"beampath": "nul\x00byte"},
    {"description": None},
]
BAD_DEPLOYMENTS = [
    {"sha256": "not-a-digest"},
    {"version": ""},
    {"source": "s" * 3000},
    {"is_live": "yes"},
    {"package_import_name": None},
    {"model_id": 0},
]


class TestValidationIsTheSingleStores:
    @pytest.mark.parametrize("bad", BAD_MODELS, ids=str)
    def test_models(self, service, model_db, bad):
        with pytest.raises(ValidationError) as single:
            service.store_model(**model_fields(**bad))
        with pytest.raises(ValidationError) as bulk:
            service.store_models([model_fields(), model_fields(**bad)])
        assert bulk.value.field == f"{single.value.field} (record 2)"
        assert bulk.value.problem == single.value.problem
        assert count(model_db, Model) == 0

    @pytest.mark.parametrize("bad", BAD_DEPLOYMENTS, ids=str)
    def test_deployments(self, service, model_db, bad):
        model_id = make_model(service)
        with pytest.raises(ValidationError) as single:
            service.store_deployment(**{**deployment_fields(model_id), **bad})
        with pytest.raises(ValidationError) as bulk:
            service.store_deployments([{**deployment_fields(model_id), **bad}])
        assert bulk.value.field == f"{single.value.field} (record 1)"
        assert bulk.value.problem == single.value.problem
        assert count(model_db, Deployment) == 0


class TestStoreDeployments:
    def test_returns_ids_and_normalises_sha256(self, service):
        model_id = make_model(service)
        digest = sha("upper")
        ids = service.store_deployments(
            [deployment_fields(model_id), deployment_fields(model_id, sha256="sha256:" + digest.upper())]
        )
        assert [d.deployment_id for d in service.get_deployments(model_id=model_id)] == ids
        assert service.get_deployment(deployment_id=ids[1]).sha256 == digest

    def test_same_version_and_bytes_returns_the_existing_id(self, service):
        model_id = make_model(service)
        fields = deployment_fields(model_id)
        existing = service.store_deployment(**fields)
        assert service.store_deployments([fields, fields]) == [existing, existing]

    def test_same_version_other_bytes_is_a_conflict_and_writes_nothing(self, service, model_db):
        model_id = make_model(service)
        fields = deployment_fields(model_id)
        service.store_deployment(**fields)
        with pytest.raises(DeploymentConflictError) as info:
            service.store_deployments([deployment_fields(model_id), {**fields, "sha256": sha("other")}])
        assert info.value.stored_sha256 == fields["sha256"]
        assert count(model_db, Deployment) == 1

    def test_the_last_live_one_wins_and_demotes_the_previous(self, service):
        m1, m2 = make_model(service), make_model(service)
        old_live = make_deployment(service, m1, is_live=True)
        ids = service.store_deployments(
            [
                deployment_fields(m1, is_live=True),
                deployment_fields(m1, is_live=True),
                deployment_fields(m1),
                deployment_fields(m2, is_live=True),
            ]
        )
        assert service.get_live_deployment(m1).deployment_id == ids[1]
        assert service.get_live_deployment(m2).deployment_id == ids[3]
        assert not service.get_deployment(deployment_id=old_live).is_live
        assert len(service.get_deployments(is_live=True)) == 2

    def test_storing_an_existing_one_live_makes_it_live(self, service):
        model_id = make_model(service)
        fields = deployment_fields(model_id)
        first = service.store_deployment(**fields)
        make_deployment(service, model_id, is_live=True)
        assert service.store_deployments([{**fields, "is_live": True}]) == [first]
        assert service.get_live_deployment(model_id).deployment_id == first

    def test_unknown_model(self, service, model_db):
        model_id = make_model(service)
        with pytest.raises(ModelNotFoundError):
            service.store_deployments([deployment_fields(model_id), deployment_fields(model_id + 1)])
        assert count(model_db, Deployment) == 0

    def test_five_thousand_in_one_call(self, service):
        model_id = make_model(service)
        ids = service.store_deployments(deployment_fields(model_id) for _ in range(5000))
        assert len(set(ids)) == 5000
        assert service.get_latest_deployment(model_id=model_id).deployment_id == ids[-1]


class TestImportRecords:
    def test_counts_by_kind_and_progress_per_batch(self, service):
        seen = []
        records = [{"kind": "project", "project_name": "p", "description": "d"}]
        records += [{"kind": "model", **model_fields()} for _ in range(5)]
        counts = service.import_records(records, batch_size=2, progress=lambda k, n: seen.append((k, n)))
        assert counts == {
            "header": 0,
            "project": 1,
            "model": 5,
            "deployment": 0,
            "deployment_variables": 0,
            "flow": 0,
            "flow_of_flows": 0,
        }
        assert seen == [("project", 1), ("model", 2), ("model", 2), ("model", 1)]

    def test_given_ids_and_timestamps_are_kept(self, service):
        created = datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        deployed = "2021-06-07T08:09:10.111213+02:00"
        service.import_records(
            [
                {"kind": "model", "model_id": 42, "created": created.isoformat(), **model_fields()},
                {"kind": "deployment", "deployment_id": 77, "deploy_date": deployed, **deployment_fields(42)},
            ]
        )
        assert service.get_model(model_id=42).created == created
        stored = service.get_deployment(deployment_id=77)
        assert stored.deploy_date == datetime(2021, 6, 7, 6, 9, 10, 111213, tzinfo=UTC)
        assert make_model(service) > 42 and make_deployment(service, 42) > 77  # new ids continue after them

    def test_a_given_id_that_belongs_to_another_model_is_a_conflict(self, service):
        existing = make_model(service)
        with pytest.raises(ConflictError, match="other fields"):
            service.import_records([{"kind": "model", "model_id": existing, **model_fields()}])
        fields = model_fields()
        make_model(service, **fields)
        with pytest.raises(ConflictError, match="already exists as model"):
            service.import_records([{"kind": "model", "model_id": 99, **fields}])

    @pytest.mark.parametrize(
        "record, field",
        [
            ({"kind": "spaceship"}, "kind (record 1)"),
            ("not a mapping", "record 1"),
            ({"kind": "model", "colour": "red", **model_fields()}, "fields (record 1)"),
            ({"kind": "model", "created": "2020-01-01T00:00:00", **model_fields()}, "created (record 1)"),
            ({"kind": "model", "created": "yesterday", **model_fields()}, "created (record 1)"),
            (  # before year 1 once in UTC
                {"kind": "model", "created": "0001-01-01T00:00:00+05:00", **model_fields()},
                "created (record 1)",
            ),
            ({"kind": "header", "format": "lume-services-registry", "version": 99}, "header (record 1)"),
            (
                {"kind": "flow", "flow_id": "f", "flow_name": "n", "project_name": "p"},
                "deployment_id (record 1)",
            ),
        ],
    )
    def test_refused_records_name_the_field_and_the_record(self, service, record, field):
        with pytest.raises(ValidationError) as info:
            service.import_records([record])
        assert info.value.field == field

    def test_projects(self, service):
        make_project(service, "p", description="first")
        assert (
            service.import_records([{"kind": "project", "project_name": "p", "description": "first"}])[
                "project"
            ]
            == 1
        )
        with pytest.raises(ProjectAlreadyExistsError):
            service.import_records([{"kind": "project", "project_name": "p", "description": "second"}])

    def test_flows_are_checked_like_store_flow(self, service):
        project = make_project(service)
        d1, d2 = make_deployment(service), make_deployment(service)
        make_flow(service, d1, project, flow_id="taken")

        def flow(**overrides):
            return {
                "kind": "flow",
                "flow_id": "new",
                "flow_name": "n",
                "project_name": project,
                "deployment_id": d2,
                **overrides,
            }

        with pytest.raises(ProjectNotFoundError):
            service.import_records([flow(project_name="nope")])
        with pytest.raises(DeploymentNotFoundError):
            service.import_records([flow(deployment_id=d2 + 100)])
        with pytest.raises(FlowAlreadyExistsError, match="one flow per deployment"):
            service.import_records([flow(deployment_id=d1)])
        with pytest.raises(FlowAlreadyExistsError):
            service.import_records([flow(flow_id="taken")])
        assert service.import_records([flow(), flow()])["flow"] == 2
        assert service.get_flow(flow_id="new").deployment_id == d2

    def test_flows_of_flows_are_checked_like_store_flow_of_flows(self, service):
        project = make_project(service)
        step = make_flow(service, project_name=project)

        def composite(**overrides):
            return composition_record("c", project, [step], **overrides)

        with pytest.raises(FlowNotFoundError):
            service.import_records([composite(composing_flows=["missing"])])
        with pytest.raises(ValidationError, match="cannot contain itself"):
            service.import_records([composite(composing_flows=[step, "c"])])
        with pytest.raises(ValidationError, match="composing_flows"):
            service.import_records([composite(composing_flows=[])])
        service.import_records([composite(), composite(parent_flow_id="d", composing_flows=["c", step])])
        assert [s.flow_id for s in service.get_flow_of_flows(parent_flow_id="d")] == ["c", step]
        with pytest.raises(FlowAlreadyExistsError):
            service.import_records([composite(composing_flows=[step, step])])

    def test_a_composition_owned_by_a_deployment_is_checked_like_a_flow(self, service, model_db):
        project = make_project(service)
        step = make_flow(service, project_name=project)
        free, taken = make_deployment(service), service.get_flow(flow_id=step).deployment_id

        def composite(**overrides):
            return composition_record("v", project, [step], **{"deployment_id": free, **overrides})

        with pytest.raises(DeploymentNotFoundError):
            service.import_records([composite(deployment_id=free + 100)])
        with pytest.raises(FlowAlreadyExistsError, match="one flow per deployment"):
            service.import_records([composite(deployment_id=taken)])
        with pytest.raises(FlowAlreadyExistsError, match="one flow per deployment"):
            service.import_records([composite(), composite(parent_flow_id="w")])
        with pytest.raises(ValidationError, match="deployment_id"):
            service.import_records([composite(deployment_id="one")])
        assert count(model_db, FlowOfFlows) == 0
        service.import_records([composite()])
        loaded = service.load_deployment(model_id=service.get_deployment(deployment_id=free).model_id)
        assert loaded.flow.flow_id == "v" and [s.flow_id for s in loaded.flow_of_flows] == [step]
        with pytest.raises(FlowAlreadyExistsError):  # the same composition without its owner
            service.import_records([composite(deployment_id=None)])


class TestExportRecords:
    def test_header_first_then_every_row_once(self, service):
        populated(service)
        records = list(service.export_records(batch_size=2))
        header, rest = records[0], records[1:]
        assert header["kind"] == "header" and header["format"] == "lume-services-registry"
        kinds = [r["kind"] for r in rest]
        order = ["project", "model", "deployment", "deployment_variables", "flow", "flow_of_flows"]
        assert kinds == sorted(kinds, key=order.index)
        assert {k: kinds.count(k) for k in header["counts"]} == header["counts"]
        assert header["counts"] == {"project": 2, "model": 3, "deployment": 4, "deployment_variables": 0,
                                    "flow": 3, "flow_of_flows": 3}  # fmt: skip
        compositions = [r for r in rest if r["kind"] == "flow_of_flows"]
        assert [r["parent_flow_id"] for r in compositions] == ["inner", "outer", "versioned"]
        owner = service.get_flow(flow_id="versioned").deployment_id
        assert [r["deployment_id"] for r in compositions] == [None, None, owner] and owner is not None

    def test_timestamps_are_iso_with_offset(self, service):
        make_model(service)
        model = next(r for r in service.export_records() if r["kind"] == "model")
        created = datetime.fromisoformat(model["created"])
        assert created.utcoffset() == timedelta(0)

    def test_an_empty_registry(self, service):
        assert [r["kind"] for r in service.export_records()] == ["header"]


@pytest.fixture
def empty_service(dialect, fresh_db_url):
    db = ModelDB(ModelDBConfig(url=fresh_db_url(dialect), auto_migrate=True))
    yield ModelDBService(db)
    db.dispose()


class TestRoundTrip:
    def test_export_then_import_into_an_empty_registry_reproduces_it(self, service, model_db, empty_service):
        populated(service)
        records = list(service.export_records(batch_size=2))
        empty_service.import_records(records, batch_size=2)
        assert snapshot(empty_service.model_db) == snapshot(model_db)
        again = list(empty_service.export_records())
        assert again[1:] == records[1:]

    def test_importing_the_same_export_again_changes_nothing(self, service, model_db):
        populated(service)
        before = snapshot(model_db)
        service.import_records(list(service.export_records()))
        assert snapshot(model_db) == before

    def test_the_imported_registry_keeps_working(self, service, empty_service):
        populated(service)
        empty_service.import_records(service.export_records())
        model_id = make_model(empty_service)
        assert model_id == max(r.model_id for r in service.get_models()) + 1
        deployment_id = make_deployment(empty_service, model_id, is_live=True)
        assert empty_service.get_live_deployment(model_id).deployment_id == deployment_id
        empty_service.store_flow_of_flows(
            parent_flow_id="third", flow_name="t", project_name="proj", composing_flows=["outer"]
        )
        steps = [s.id for p in ("inner", "outer") for s in service.get_flow_of_flows(parent_flow_id=p)]
        assert empty_service.get_flow_of_flows(parent_flow_id="third")[0].id > max(steps)
