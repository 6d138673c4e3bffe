"""ModelDBService on real databases (every test runs on each selected dialect)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from factories import (
    deployment_fields,
    make_deployment,
    make_flow,
    make_model,
    make_project,
    model_fields,
    sha,
)
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import func, select, update

from lume_services.errors import (
    ConflictError,
    DeploymentConflictError,
    DeploymentNotFoundError,
    FlowAlreadyExistsError,
    FlowNotFoundError,
    FlowOfFlowsNotFoundError,
    InUseError,
    LUMEServicesError,
    ModelNotFoundError,
    ProjectAlreadyExistsError,
    ProjectNotFoundError,
    UnknownFilterError,
    ValidationError,
)
from lume_services.services.models.db.schema import Deployment, Flow, FlowOfFlows, Model, Project
from lume_services.services.models.records import DeploymentRecord, ModelRecord

PREDECESSOR_MODEL = dict(
    author="Jackie Garrahan", laboratory="slac", facility="lcls", beampath="cu_hxr", description="test_model"
)


def count(model_db, table) -> int:
    with model_db.session(write=False) as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


class TestStoreModel:
    def test_returns_int_id_and_stores_fields(self, service):
        model_id = service.store_model(**PREDECESSOR_MODEL)
        assert isinstance(model_id, int)
        record = service.get_model(model_id=model_id)
        assert record.model_dump(include=set(PREDECESSOR_MODEL)) == PREDECESSOR_MODEL
        assert record.created.tzinfo is UTC
        assert abs(record.created - datetime.now(UTC)) < timedelta(minutes=5)

    def test_identical_model_returns_existing_id(self, service, model_db):
        first = service.store_model(**PREDECESSOR_MODEL)
        assert service.store_model(**PREDECESSOR_MODEL) == first
        assert count(model_db, Model) == 1

    def test_identity_is_case_sensitive_on_every_dialect(self, service):
        first = service.store_model(**PREDECESSOR_MODEL)
        other = service.store_model(**{**PREDECESSOR_MODEL, "description": "TEST_MODEL"})
        assert other != first

    def test_missing_argument_is_type_error(self, service):
        with pytest.raises(TypeError):
            service.store_model(author="a", laboratory="b", facility="c", beampath="d")

    @pytest.mark.parametrize(
        "field, value, problem",
        [
            ("author", "x" * 101, "at most 100"),
            ("description", "d" * 256, "at most 255"),
            ("facility", "", "empty"),
            ("beampath", "   ", "empty"),
            ("laboratory", "sl\x00ac", "NUL"),
            ("author", 42, "expected text"),
            ("author", None, "required"),
            ("description", "bad \ud800 surrogate", "surrogate"),
        ],
    )
    def test_bad_input_is_refused_before_the_database(self, service, model_db, field, value, problem):
        with pytest.raises(ValidationError, match=problem) as info:
            service.store_model(**{**PREDECESSOR_MODEL, field: value})
        assert info.value.field == field
        assert isinstance(info.value, ValueError)
        assert count(model_db, Model) == 0

    def test_unicode_and_longest_values_round_trip(self, service):
        fields = dict(
            author="Jürgen Å" + "é" * 92,
            laboratory="DESY ✓",
            facility="x" * 100,
            beampath="b",
            description="ü" * 255,
        )
        model_id = service.store_model(**fields)
        assert service.get_model(model_id=model_id).model_dump(include=set(fields)) == fields


class TestGetModel:
    def test_not_found_names_the_query(self, service):
        with pytest.raises(ModelNotFoundError, match="model_id=12345") as info:
            service.get_model(model_id=12345)
        assert info.value.query == {"model_id": 12345}
        assert isinstance(info.value, LookupError)

    def test_filters_are_anded(self, service):
        a = make_model(service, author="A", facility="lcls")
        make_model(service, author="B", facility="lcls")
        assert service.get_model(author="A", facility="lcls").model_id == a
        with pytest.raises(ModelNotFoundError):
            service.get_model(author="A", facility="facet")

    def test_several_matches_give_the_lowest_id(self, service):
        ids = [make_model(service, author="same") for _ in range(3)]
        assert service.get_model(author="same").model_id == min(ids)

    def test_unknown_keyword_names_it_and_the_allowed_ones(self, service):
        with pytest.raises(UnknownFilterError) as info:
            service.get_model(model_name="x")
        assert isinstance(info.value, ValueError)
        assert "model_name" in str(info.value) and "author" in str(info.value)

    def test_returns_a_frozen_record(self, service):
        record = service.get_model(model_id=make_model(service))
        assert isinstance(record, ModelRecord)
        with pytest.raises(PydanticValidationError, match="frozen"):
            record.author = "someone else"  # type: ignore[misc]


class TestListModels:
    def test_pages_cover_everything_once_in_order(self, service):
        ids = [make_model(service) for _ in range(7)]
        seen, after = [], None
        while True:
            page = service.list_models(limit=3, after=after)
            seen += [m.model_id for m in page]
            if page.next_after is None:
                break
            after = page.next_after
        assert seen == sorted(ids)

    def test_search_matches_any_text_field_case_insensitively(self, service):
        a = make_model(service, beampath="CU_SXR")
        b = make_model(service, description="Injector surrogate 100%")
        make_model(service)
        assert [m.model_id for m in service.list_models(search="cu_sxr")] == [a]
        assert [m.model_id for m in service.list_models(search="100%")] == [b]
        assert list(service.list_models(search="%")) == [service.get_model(model_id=b)]

    def test_filters_and_empty_result(self, service):
        assert service.list_models(author="nobody").items == []

    @pytest.mark.parametrize("limit", [0, 1001, "10", True])
    def test_bad_limit(self, service, limit):
        with pytest.raises(ValidationError, match="limit"):
            service.list_models(limit=limit)

    def test_with_live_deployment(self, service):
        m1, m2 = make_model(service), make_model(service)
        make_deployment(service, m1, is_live=False)
        live = make_deployment(service, m1, is_live=True)
        page = service.list_models_with_live()
        by_id = {row.model.model_id: row for row in page}
        assert by_id[m1].live_deployment.deployment_id == live
        assert by_id[m2].live_deployment is None
        assert [row.model.model_id for row in page] == [m1, m2]


class TestUpdateAndDeleteModel:
    def test_update_description(self, service):
        model_id = make_model(service)
        assert service.update_model(model_id, description="new").description == "new"
        assert service.get_model(model_id=model_id).description == "new"

    def test_update_to_an_existing_identity_conflicts(self, service):
        make_model(service, description="one")
        two = make_model(service, description="two")
        with pytest.raises(ConflictError):
            service.update_model(two, description="one")
        assert service.get_model(model_id=two).description == "two"

    def test_delete_refuses_a_model_with_deployments(self, service, model_db):
        dep = make_deployment(service)
        model_id = service.get_deployment(deployment_id=dep).model_id
        with pytest.raises(InUseError, match="1 deployment"):
            service.delete_model(model_id)
        assert count(model_db, Deployment) == 1

    def test_cascade_deletes_deployments_and_flows(self, service, model_db):
        dep = make_deployment(service)
        make_flow(service, dep)
        model_id = service.get_deployment(deployment_id=dep).model_id
        service.delete_model(model_id, cascade=True)
        assert (count(model_db, Model), count(model_db, Deployment), count(model_db, Flow)) == (0, 0, 0)
        assert count(model_db, Project) == 1  # projects outlive their flows

    def test_delete_unknown(self, service):
        with pytest.raises(ModelNotFoundError):
            service.delete_model(999)


class TestStoreDeployment:
    def test_predecessor_contract(self, service):
        model_id = service.store_model(**PREDECESSOR_MODEL)
        dep_id = service.store_deployment(
            model_id=model_id,
            version="v0.0",
            source="placeholder",
            sha256=sha("placeholder"),
            image="placeholder",
            package_import_name="placeholder",
        )
        assert isinstance(dep_id, int)
        record = service.get_deployment(deployment_id=dep_id)
        assert (record.version, record.is_live, record.asset_dir) == ("v0.0", False, None)

    def test_long_versions_images_and_sources_fit(self, service):
        fields = deployment_fields(
            make_model(service),
            version="0.0.44+2.g1a2b3c4.dirty." + "x" * 39,
            image="registry.example.org:5000/a/" + "b" * 300 + ":v1@sha256:" + "c" * 64,
            source="https://example.org/" + "p" * 2000,
        )
        dep_id = service.store_deployment(**fields)
        stored = service.get_deployment(deployment_id=dep_id)
        assert (stored.version, stored.image, stored.source) == (
            fields["version"],
            fields["image"],
            fields["source"],
        )

    def test_same_version_and_bytes_returns_existing(self, service, model_db):
        fields = deployment_fields(make_model(service))
        first = service.store_deployment(**fields)
        again = service.store_deployment(**{**fields, "source": "file:///elsewhere/same.tar.gz"})
        assert again == first
        assert count(model_db, Deployment) == 1

    def test_same_version_other_bytes_conflicts_naming_both_hashes(self, service, model_db):
        fields = deployment_fields(make_model(service))
        service.store_deployment(**fields)
        with pytest.raises(DeploymentConflictError) as info:
            service.store_deployment(**{**fields, "sha256": sha("other")})
        assert fields["sha256"] in str(info.value) and sha("other") in str(info.value)
        assert count(model_db, Deployment) == 1

    def test_sha256_is_normalised(self, service):
        digest = sha("x")
        dep = make_deployment(service, sha256="SHA256:" + digest.upper())
        assert service.get_deployment(deployment_id=dep).sha256 == digest

    @pytest.mark.parametrize("bad", ["placeholder", "a" * 63, "g" * 64, 123])
    def test_bad_sha256(self, service, bad):
        with pytest.raises(ValidationError, match="sha256"):
            make_deployment(service, sha256=bad)

    @pytest.mark.parametrize(
        "field, value",
        [
            ("version", "v" * 65),
            ("is_live", "yes"),
            ("image", "i" * 513),
            ("model_id", "1"),
            ("package_import_name", ""),
            ("asset_dir", "a\x00b"),
            ("source", None),
        ],
    )
    def test_bad_input_stores_nothing(self, service, model_db, field, value):
        model_id = make_model(service)
        with pytest.raises(ValidationError) as info:
            service.store_deployment(**{**deployment_fields(model_id), field: value})
        assert info.value.field == field
        assert count(model_db, Deployment) == 0

    def test_unknown_model(self, service, model_db):
        with pytest.raises(ModelNotFoundError):
            service.store_deployment(**deployment_fields(4242))
        assert count(model_db, Deployment) == 0

    def test_one_live_deployment_per_model(self, service):
        m1, m2 = make_model(service), make_model(service)
        a = make_deployment(service, m1, is_live=True)
        other_model = make_deployment(service, m2, is_live=True)
        b = make_deployment(service, m1, is_live=True)
        live = {d.deployment_id for d in service.get_deployments(is_live=True)}
        assert live == {b, other_model}
        assert not service.get_deployment(deployment_id=a).is_live

    def test_restoring_an_existing_deployment_live_promotes_it(self, service):
        model_id = make_model(service)
        fields = deployment_fields(model_id, is_live=True)
        first = service.store_deployment(**fields)
        make_deployment(service, model_id, is_live=True)
        assert service.store_deployment(**fields) == first
        assert service.get_live_deployment(model_id).deployment_id == first


class TestGetDeployments:
    def test_empty_list_when_none(self, service):
        assert service.get_deployments(model_id=make_model(service)) == []

    def test_oldest_first_with_id_tie_break(self, service, model_db):
        model_id = make_model(service)
        ids = [make_deployment(service, model_id) for _ in range(3)]
        same = datetime(2024, 1, 1, tzinfo=UTC)
        with model_db.session() as s:  # identical timestamps: the id decides
            s.execute(update(Deployment).values(deploy_date=same))
        assert [d.deployment_id for d in service.get_deployments(model_id=model_id)] == ids
        assert service.get_latest_deployment(model_id=model_id).deployment_id == ids[-1]

    def test_latest_follows_deploy_date_before_id(self, service, model_db):
        model_id = make_model(service)
        old, new = make_deployment(service, model_id), make_deployment(service, model_id)
        with model_db.session() as s:
            s.execute(
                update(Deployment)
                .where(Deployment.deployment_id == old)
                .values(deploy_date=datetime(2030, 1, 1, tzinfo=UTC))
            )
        assert service.get_latest_deployment(model_id=model_id).deployment_id == old
        assert [d.deployment_id for d in service.get_deployments(model_id=model_id)] == [new, old]

    def test_query_by_checksum_with_either_spelling(self, service):
        dep = make_deployment(service, sha256=sha("find me"))
        assert service.get_deployment(sha256=sha("find me")).deployment_id == dep
        assert service.get_deployment(sha_256=sha("find me")).deployment_id == dep

    def test_latest_unknown_keyword(self, service):
        with pytest.raises(UnknownFilterError, match="model_name"):
            service.get_latest_deployment(model_name="x")

    def test_not_found(self, service):
        with pytest.raises(DeploymentNotFoundError):
            service.get_latest_deployment(model_id=make_model(service))
        with pytest.raises(DeploymentNotFoundError):
            service.get_deployment(deployment_id=999)

    def test_list_pages(self, service):
        model_id = make_model(service)
        ids = [make_deployment(service, model_id) for _ in range(5)]
        first = service.list_deployments(model_id=model_id, limit=2)
        rest = service.list_deployments(model_id=model_id, limit=10, after=first.next_after)
        assert [d.deployment_id for d in [*first, *rest]] == ids
        assert rest.next_after is None


class TestUpdateDeployment:
    def test_set_live_demotes_the_previous_one(self, service):
        model_id = make_model(service)
        a = make_deployment(service, model_id, is_live=True)
        b = make_deployment(service, model_id)
        assert service.set_live(b).is_live
        assert [d.is_live for d in service.get_deployments(model_id=model_id)] == [False, True]
        assert service.get_live_deployment(model_id).deployment_id == b
        assert service.update_deployment(b, is_live=False).is_live is False
        with pytest.raises(DeploymentNotFoundError):
            service.get_live_deployment(model_id)
        assert a

    def test_image(self, service):
        dep = make_deployment(service)
        assert service.update_deployment(dep, image="ghcr.io/x/y:v1").image == "ghcr.io/x/y:v1"

    def test_unknown_and_bad(self, service):
        with pytest.raises(DeploymentNotFoundError):
            service.set_live(777)
        with pytest.raises(ValidationError):
            service.update_deployment(make_deployment(service), is_live=2)

    def test_the_predecessors_integer_booleans(self, service):
        dep = make_deployment(service)
        assert service.update_deployment(dep, is_live=1).is_live is True
        assert [d.deployment_id for d in service.get_deployments(deployment_id=dep, is_live=1)] == [dep]
        assert service.update_deployment(dep, is_live=0).is_live is False


class TestDeleteDeployment:
    def test_deletes_its_flow_too(self, service, model_db):
        dep = make_deployment(service)
        make_flow(service, dep)
        service.delete_deployment(dep)
        assert (count(model_db, Deployment), count(model_db, Flow)) == (0, 0)

    def test_refused_while_its_flow_is_a_composition_step(self, service, model_db):
        project = make_project(service)
        flow = make_flow(service, project_name=project)
        service.store_flow_of_flows(
            parent_flow_id="parent", flow_name="p", project_name=project, composing_flows=[flow]
        )
        dep = service.get_flow(flow_id=flow).deployment_id
        with pytest.raises(InUseError):
            service.delete_deployment(dep)
        assert count(model_db, Deployment) == 1


class TestLoadDeployment:
    def test_latest_with_flow_and_project(self, service):
        model_id = make_model(service)
        make_deployment(service, model_id)
        latest = make_deployment(service, model_id)
        project = make_project(service)
        flow = make_flow(service, latest, project)
        loaded = service.load_deployment(model_id=model_id)
        assert loaded.deployment.deployment_id == latest
        assert loaded.flow.flow_id == flow and loaded.project.project_name == project

    def test_without_flow(self, service):
        dep = make_deployment(service)
        model_id = service.get_deployment(deployment_id=dep).model_id
        loaded = service.load_deployment(model_id=model_id, deployment_id=dep)
        assert (loaded.flow, loaded.project) == (None, None)

    def test_other_models_deployment_is_not_found(self, service):
        dep = make_deployment(service)
        with pytest.raises(DeploymentNotFoundError):
            service.load_deployment(model_id=make_model(service), deployment_id=dep)


class TestProjects:
    def test_store_returns_name_and_is_idempotent(self, service, model_db):
        assert service.store_project(project_name="my_project", description="placeholder") == "my_project"
        assert service.store_project(project_name="my_project", description="placeholder") == "my_project"
        assert count(model_db, Project) == 1

    def test_other_description_conflicts(self, service):
        service.store_project(project_name="p", description="one")
        with pytest.raises(ProjectAlreadyExistsError, match="update_project"):
            service.store_project(project_name="p", description="two")
        assert service.get_project(project_name="p").description == "one"

    def test_missing_argument(self, service):
        with pytest.raises(TypeError):
            service.store_project(project_name="p")

    def test_get_unknown_keyword_and_not_found(self, service):
        with pytest.raises(UnknownFilterError, match="project_id"):
            service.get_project(project_id=1)
        with pytest.raises(ProjectNotFoundError, match="store_project"):
            service.get_project(project_name="nope")

    def test_update_list_delete(self, service):
        make_project(service, "b")
        make_project(service, "a")
        assert service.update_project("a", description="new").description == "new"
        assert [p.project_name for p in service.get_projects()] == ["a", "b"]
        service.delete_project("a")
        assert [p.project_name for p in service.get_projects()] == ["b"]

    def test_delete_refused_while_flows_belong_to_it(self, service):
        project = make_project(service)
        make_flow(service, project_name=project)
        with pytest.raises(InUseError, match="1 flow"):
            service.delete_project(project)


class TestStoreFlow:
    def test_predecessor_contract(self, service):
        dep = make_deployment(service)
        service.store_project(project_name="my_project", description="placeholder")
        flow_id = service.store_flow(
            deployment_id=dep, flow_id="test", flow_name="my_test_flow", project_name="my_project"
        )
        assert flow_id == "test"
        flow = service.get_flow(flow_id="test")
        assert (flow.flow_name, flow.project_name, flow.deployment_id, flow.composite) == (
            "my_test_flow",
            "my_project",
            dep,
            False,
        )

    def test_identical_again_returns_it(self, service, model_db):
        dep, project = make_deployment(service), make_project(service)
        args = dict(deployment_id=dep, flow_id="f", flow_name="n", project_name=project)
        assert service.store_flow(**args) == service.store_flow(**args) == "f"
        assert count(model_db, Flow) == 1

    def test_one_flow_per_deployment(self, service, model_db):
        dep, project = make_deployment(service), make_project(service)
        service.store_flow(deployment_id=dep, flow_id="f1", flow_name="n", project_name=project)
        with pytest.raises(FlowAlreadyExistsError, match="one flow per deployment"):
            service.store_flow(deployment_id=dep, flow_id="f2", flow_name="n", project_name=project)
        assert count(model_db, Flow) == 1

    def test_flow_id_reused_for_other_deployment(self, service):
        project = make_project(service)
        make_flow(service, flow_id="f", project_name=project)
        with pytest.raises(FlowAlreadyExistsError):
            make_flow(service, flow_id="f", project_name=project)

    def test_project_must_exist(self, service, model_db):
        with pytest.raises(ProjectNotFoundError, match="store_project"):
            service.store_flow(
                deployment_id=make_deployment(service), flow_id="f", flow_name="n", project_name="missing"
            )
        assert count(model_db, Flow) == 0

    def test_deployment_must_exist(self, service):
        with pytest.raises(DeploymentNotFoundError):
            service.store_flow(
                deployment_id=999, flow_id="f", flow_name="n", project_name=make_project(service)
            )

    def test_deployment_is_required(self, service, model_db):
        with pytest.raises(ValidationError, match="store_flow_of_flows"):
            service.store_flow(
                deployment_id=None, flow_id="f", flow_name="n", project_name=make_project(service)
            )
        assert count(model_db, Flow) == 0

    def test_get_flow_unknown_keyword(self, service):
        with pytest.raises(UnknownFilterError, match="flow_identifier"):
            service.get_flow(flow_identifier="x")
        with pytest.raises(FlowNotFoundError):
            service.get_flow(flow_id="x")


class TestFlowOfFlows:
    def setup_flows(self, service, n=2):
        project = make_project(service)
        return project, [make_flow(service, project_name=project) for _ in range(n)]

    def test_store_and_get_in_position_order(self, service):
        project, (a, b) = self.setup_flows(service)
        mapped = {"input1": {"parent_flow_name": "a", "map_type": "raw", "attribute_index": ["x", 0]}}
        parent = service.store_flow_of_flows(
            parent_flow_id="parent",
            flow_name="composite",
            project_name=project,
            composing_flows=[b, {"flow_id": a, "mapped_parameters": mapped}, b],
        )
        assert parent == "parent"
        steps = service.get_flow_of_flows(parent_flow_id="parent")
        assert [(s.position, s.flow_id) for s in steps] == [(1, b), (2, a), (3, b)]
        assert steps[1].mapped_parameters == mapped and steps[0].mapped_parameters is None
        assert steps[1].flow.flow_name == "my_test_flow"
        composite = service.get_flow(flow_id="parent")
        assert composite.composite and composite.deployment_id is None

    def test_identical_again_and_different_conflicts(self, service, model_db):
        project, (a, b) = self.setup_flows(service)
        kwargs = dict(parent_flow_id="p", flow_name="c", project_name=project, composing_flows=[a, b])
        assert service.store_flow_of_flows(**kwargs) == service.store_flow_of_flows(**kwargs)
        with pytest.raises(FlowAlreadyExistsError):
            service.store_flow_of_flows(**{**kwargs, "composing_flows": [b, a]})
        assert count(model_db, FlowOfFlows) == 2

    def test_unknown_subflow_stores_nothing(self, service, model_db):
        project, (a, _) = self.setup_flows(service)
        with pytest.raises(FlowNotFoundError, match="nope"):
            service.store_flow_of_flows(
                parent_flow_id="p", flow_name="c", project_name=project, composing_flows=[a, "nope"]
            )
        assert count(model_db, FlowOfFlows) == 0
        with pytest.raises(FlowNotFoundError):
            service.get_flow(flow_id="p")

    @pytest.mark.parametrize(
        "steps", [[], "abc", [{"flow": "x"}], [{"flow_id": "x", "mapped_parameters": [1]}]]
    )
    def test_bad_steps(self, service, steps):
        project = make_project(service)
        with pytest.raises(ValidationError):
            service.store_flow_of_flows(
                parent_flow_id="p", flow_name="c", project_name=project, composing_flows=steps
            )

    def test_not_found_and_delete(self, service, model_db):
        with pytest.raises(FlowOfFlowsNotFoundError):
            service.get_flow_of_flows(parent_flow_id="none")
        project, (a, b) = self.setup_flows(service)
        service.store_flow_of_flows(
            parent_flow_id="p", flow_name="c", project_name=project, composing_flows=[a, b]
        )
        with pytest.raises(InUseError):
            service.delete_flow(a)
        service.delete_flow("p")
        assert count(model_db, FlowOfFlows) == 0
        service.delete_flow(a)
        assert count(model_db, Flow) == 1


class TestFlowOfFlowsAsDeployment:
    """A composition stored as a version of a model: one deployment row owns the parent flow."""

    def store(self, service, model_id, project, steps, version="1.0", parent="parent", **deployment):
        fields = {
            "model_id": model_id, "version": version, "source": "flow-of-flows:c", "sha256": sha(7),
            "package_import_name": "lume_services.flows.composite", "is_live": True, **deployment,
        }  # fmt: skip
        return service.store_flow_of_flows(
            parent_flow_id=parent, flow_name="c", project_name=project, composing_flows=steps,
            deployment=fields,
        )  # fmt: skip

    def test_load_deployment_gives_the_composite_and_its_steps(self, service):
        project = make_project(service)
        a, b = make_flow(service, project_name=project), make_flow(service, project_name=project)
        owner = make_model(service)
        assert self.store(service, owner, project, [a, b]) == "parent"
        composite = service.get_flow(flow_id="parent")
        assert composite.composite and composite.deployment_id is not None
        loaded = service.load_deployment(model_id=owner, deployment_id=composite.deployment_id)
        assert (
            loaded.deployment.is_live
            and loaded.deployment.package_import_name == "lume_services.flows.composite"
        )
        assert loaded.flow == composite and loaded.project.project_name == project
        assert [(s.position, s.flow_id) for s in loaded.flow_of_flows] == [(1, a), (2, b)]
        step = service.get_deployment(deployment_id=service.get_flow(flow_id=a).deployment_id)
        plain = service.load_deployment(model_id=step.model_id)
        assert plain.flow.flow_id == a and plain.flow_of_flows == []

    def test_identical_again_returns_it_and_another_sha_conflicts_storing_nothing(self, service, model_db):
        project = make_project(service)
        a, b = make_flow(service, project_name=project), make_flow(service, project_name=project)
        owner = make_model(service)
        self.store(service, owner, project, [a, b])
        before = (count(model_db, Deployment), count(model_db, Flow), count(model_db, FlowOfFlows))
        assert self.store(service, owner, project, [a, b]) == "parent"
        with pytest.raises(DeploymentConflictError):
            self.store(service, owner, project, [b], parent="other", sha256=sha(5))
        with pytest.raises(FlowNotFoundError):
            self.store(service, owner, project, [a, "nope"], version="2.0", parent="p2")
        assert (count(model_db, Deployment), count(model_db, Flow), count(model_db, FlowOfFlows)) == before

    def test_a_deployment_with_a_flow_cannot_own_a_composite_too(self, service, model_db):
        project = make_project(service)
        a = make_flow(service, project_name=project)
        taken = service.get_deployment(deployment_id=service.get_flow(flow_id=a).deployment_id)
        with pytest.raises(FlowAlreadyExistsError, match="one flow per deployment"):
            self.store(service, taken.model_id, project, [a], version=taken.version, sha256=taken.sha256)
        assert count(model_db, FlowOfFlows) == 0

    def test_deleting_the_deployment_deletes_the_composition(self, service, model_db):
        project = make_project(service)
        a = make_flow(service, project_name=project)
        owner = make_model(service)
        self.store(service, owner, project, [a])
        service.delete_deployment(service.get_flow(flow_id="parent").deployment_id)
        assert count(model_db, FlowOfFlows) == 0
        with pytest.raises(FlowNotFoundError):
            service.get_flow(flow_id="parent")
        assert service.get_flow(flow_id=a).flow_id == a  # the step's own flow stays

    def test_bad_deployment_values_store_nothing(self, service, model_db):
        project = make_project(service)
        a = make_flow(service, project_name=project)
        before = count(model_db, Deployment)
        with pytest.raises(ValidationError, match="version"):
            self.store(service, make_model(service), project, [a], version="x" * 65)
        with pytest.raises(ModelNotFoundError):
            self.store(service, 31337, project, [a])
        assert count(model_db, Deployment) == before and count(model_db, FlowOfFlows) == 0


class TestRecordsNeverCarryOrmRows:
    def test_get_deployments_returns_records(self, service):
        dep = make_deployment(service)
        records = service.get_deployments(deployment_id=dep)
        assert all(type(r) is DeploymentRecord for r in records)
        assert records[0].model_dump()["sha256"]


def test_errors_share_a_base(service):
    with pytest.raises(LUMEServicesError):
        service.get_model(model_id=31337)
    with pytest.raises(LUMEServicesError):
        service.store_model(**model_fields(author=""))


class TestStoreDeploymentWithFlow:
    def test_both_rows_in_one_call_and_idempotent(self, service, model_db):
        model_id, project = make_model(service), make_project(service)
        fields = deployment_fields(model_id, is_live=True)
        args = dict(**fields, flow_id="prefect-uuid", flow_name="my-model", project_name=project)
        dep, flow = service.store_deployment_with_flow(**args)
        assert service.store_deployment_with_flow(**args) == (dep, flow)
        loaded = service.load_deployment(model_id=model_id)
        assert (loaded.deployment.deployment_id, loaded.flow.flow_id, loaded.deployment.is_live) == (
            dep,
            "prefect-uuid",
            True,
        )
        assert (count(model_db, Deployment), count(model_db, Flow)) == (1, 1)

    @pytest.mark.parametrize("failure", ["project", "flow_id_taken", "bad_flow_name", "sha_conflict"])
    def test_nothing_is_written_when_any_part_fails(self, service, model_db, failure):
        model_id, project = make_model(service), make_project(service)
        taken = make_flow(service, project_name=project)
        before = (count(model_db, Deployment), count(model_db, Flow))
        fields = deployment_fields(model_id)
        args = dict(**fields, flow_id="new-flow", flow_name="n", project_name=project)
        if failure == "sha_conflict":
            service.store_deployment(**fields)
            before = (count(model_db, Deployment), count(model_db, Flow))
            args["sha256"] = sha("other bytes")
        args.update(
            {
                "project": {"project_name": "missing"},
                "flow_id_taken": {"flow_id": taken},
                "bad_flow_name": {"flow_name": "x" * 300},
                "sha_conflict": {},
            }[failure]
        )
        with pytest.raises(LUMEServicesError):
            service.store_deployment_with_flow(**args)
        assert (count(model_db, Deployment), count(model_db, Flow)) == before
