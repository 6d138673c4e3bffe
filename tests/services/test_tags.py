"""Tags on models and deployments, on every dialect: set, removed, audited, filtered through the index, exported."""

from __future__ import annotations

import pytest
from factories import deployment_fields, make_deployment, make_model, registry_snapshot
from sqlalchemy import func, select

from lume_services.errors import DeploymentNotFoundError, ModelNotFoundError, ValidationError
from lume_services.services.models.db.schema import DeploymentTag, ModelTag
from lume_services.services.models.service import ModelDBService


def index_rows(model_db) -> tuple[int, int]:
    with model_db.session(write=False) as s:
        return tuple(s.execute(select(func.count()).select_from(t)).scalar_one() for t in (ModelTag, DeploymentTag))


class TestModelTags:
    def test_set_merges_and_records_carry_them(self, service):
        model_id = make_model(service)
        assert service.set_model_tags(model_id, {"stage": "production", "email": "a@slac"}).tags == {
            "stage": "production", "email": "a@slac"}  # fmt: skip
        record = service.set_model_tags(model_id, {"stage": "staging"})
        assert record.tags == {"stage": "staging", "email": "a@slac"} == service.get_model(model_id=model_id).tags
        assert service.list_models_with_live().items[0].model.tags == record.tags
        assert service.remove_model_tags(model_id, ["email", "absent"]).tags == {"stage": "staging"}

    def test_every_change_is_audited_and_no_change_is_not(self, service):
        model_id = make_model(service)
        service.set_model_tags(model_id, {"stage": "dev", "repo": "https://github.com/slaclab/x"})
        service.set_model_tags(model_id, {"stage": "dev"})  # nothing changes
        service.set_model_tags(model_id, {"stage": "production"})
        service.remove_model_tags(model_id, ["repo"])
        changes = [(e.before, e.after) for e in service.list_audit_events(model_id=model_id).items
                   if e.action == "model.tags_changed"]  # fmt: skip
        assert changes == [
            ({"tags": {}}, {"tags": {"repo": "https://github.com/slaclab/x", "stage": "dev"}}),
            ({"tags": {"stage": "dev"}}, {"tags": {"stage": "production"}}),
            ({"tags": {"repo": "https://github.com/slaclab/x"}}, {"tags": {}}),
        ]
        assert len(service.list_events(types=["model.tags_changed"], model_id=model_id).items) == 3  # the feed

    def test_filters_are_an_and_of_every_tag(self, service):
        a, b, c = (make_model(service) for _ in range(3))
        service.set_model_tags(a, {"stage": "production", "beam_path": "cu_hxr"})
        service.set_model_tags(b, {"stage": "production", "beam_path": "cu_sxr"})
        service.set_model_tags(c, {"stage": "dev", "beam_path": "cu_hxr"})
        ids = lambda records: [r.model_id for r in records]  # noqa: E731
        assert ids(service.get_models(tags={"stage": "production"})) == [a, b]
        assert ids(service.get_models(tags={"stage": "production", "beam_path": "cu_hxr"})) == [a]
        assert ids(service.list_models(tags={"beam_path": "cu_hxr"}, laboratory="slac")) == [a, c]
        assert [m.model.model_id for m in service.list_models_with_live(tags={"stage": "dev"})] == [c]
        assert service.get_model(tags={"stage": "dev"}).model_id == c
        assert service.get_models(tags={"stage": "Production"}) == []  # values compare exactly
        with pytest.raises(ModelNotFoundError):
            service.get_model(tags={"stage": "retired"})

    def test_long_values_are_kept_and_found(self, service, model_db):
        model_id = make_model(service)
        description = "é" * 100_000  # MLflow's limit for registry tag values
        service.set_model_tags(model_id, {"description": description})
        assert service.get_model(model_id=model_id).tags["description"] == description
        assert [m.model_id for m in service.get_models(tags={"description": description})] == [model_id]

    def test_deleting_the_model_removes_its_tags(self, service, model_db):
        model_id = make_model(service)
        service.set_model_tags(model_id, {"stage": "dev"})
        service.delete_model(model_id)
        assert index_rows(model_db) == (0, 0)

    @pytest.mark.parametrize(
        "tags, says",
        [
            ({"": "x"}, "must not be empty"),
            ({"a=b": "x"}, "must not contain '='"),
            ({"a\nb": "x"}, "control characters"),
            ({" stage": "x"}, "white space"),
            ({"k" * 251: "x"}, "at most 250 fit"),
            ({"stage": 3}, "expected text, got int"),
            ({"stage": "x\x00"}, "NUL"),
            ({"stage": "v" * 100_001}, "at most 100000 fit"),
            ({3: "x"}, "expected text, got int"),
            (["stage"], "expected a mapping"),
        ],
    )
    def test_bad_tags_store_nothing(self, service, model_db, tags, says):
        model_id = make_model(service)
        before = registry_snapshot(model_db)
        with pytest.raises(ValidationError, match=says):
            service.set_model_tags(model_id, tags)
        assert registry_snapshot(model_db) == before and index_rows(model_db) == (0, 0)

    def test_unknown_ids_and_bad_filters(self, service):
        with pytest.raises(ModelNotFoundError):
            service.set_model_tags(2**31 - 1, {"stage": "x"})
        with pytest.raises(ValidationError, match="Nothing was read"):
            service.get_models(tags={"stage": 1})
        with pytest.raises(ValidationError, match="expected a list of tag keys"):
            service.remove_model_tags(make_model(service), "stage")


class TestDeploymentTags:
    def test_set_remove_filter_and_audit(self, service):
        model_id = make_model(service)
        first, second = make_deployment(service, model_id), make_deployment(service, model_id)
        service.set_deployment_tags(first, {"ready_to_deploy": "true", "mlflow.artifact_uri": "s3://b/1"})
        service.set_deployment_tags(second, {"ready_to_deploy": "false"})
        assert service.get_deployment(deployment_id=first).tags["ready_to_deploy"] == "true"
        assert [d.deployment_id for d in service.get_deployments(tags={"ready_to_deploy": "true"})] == [first]
        assert [d.deployment_id for d in service.list_deployments(model_id=model_id, tags={"ready_to_deploy": "false"})] == [second]  # noqa: E501
        assert service.get_latest_deployment(tags={"ready_to_deploy": "true"}).deployment_id == first
        assert service.load_deployment(model_id=model_id, deployment_id=first).deployment.tags != {}
        service.remove_deployment_tags(first, ["ready_to_deploy"])
        assert service.get_deployments(tags={"ready_to_deploy": "true"}) == []
        event = service.list_audit_events(action="deployment.tags_changed").items[-1]
        assert (event.entity_id, event.model_id, event.after) == (str(first), model_id, {"tags": {}})

    def test_unknown_deployment(self, service):
        with pytest.raises(DeploymentNotFoundError):
            service.set_deployment_tags(2**31 - 1, {"a": "b"})


class TestExportImport:
    def test_tags_survive_a_round_trip_and_the_imported_ones_are_found(self, service, dialect, fresh_db_url):
        from lume_services.services.models.db.db import ModelDB, ModelDBConfig

        model_id = make_model(service)
        deployment_id = service.store_deployment(**deployment_fields(model_id))
        service.set_model_tags(model_id, {"stage": "production"})
        service.set_deployment_tags(deployment_id, {"ready_to_deploy": "true"})
        target_db = ModelDB(ModelDBConfig(url=fresh_db_url(dialect), auto_migrate=True))
        try:
            target = ModelDBService(target_db)
            target.import_records(service.export_records())
            assert target.get_models(tags={"stage": "production"})[0].model_id == model_id
            assert target.get_deployments(tags={"ready_to_deploy": "true"})[0].deployment_id == deployment_id
            assert index_rows(target_db) == (1, 1)
        finally:
            target_db.dispose()

    def test_imported_tags_are_checked(self, service):
        header = next(iter(service.export_records()))
        record = {"kind": "model", "author": "a", "laboratory": "l", "facility": "f", "beampath": "b",
                  "description": "d", "tags": {"a=b": "x"}}  # fmt: skip
        with pytest.raises(ValidationError, match="must not contain '='"):
            service.import_records([header, record])
        assert service.get_models() == []
