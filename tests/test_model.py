"""The user-facing Model API over the configured registry."""

from __future__ import annotations

import pytest
from factories import make_deployment, make_flow, make_project

from lume_services import config
from lume_services.errors import DeploymentNotRegisteredError, ModelNotFoundError, ValidationError
from lume_services.models import Model
from lume_services.services.models.db.db import ModelDB

FIELDS = dict(
    author="Jackie Garrahan", laboratory="slac", facility="lcls", beampath="cu_hxr", description="test_model"
)


class TestCreateModel:
    def test_get_or_create(self, service):
        a = Model.create_model(**FIELDS, model_db_service=service)
        b = Model.create_model(**FIELDS, model_db_service=service)
        assert a.model_id == b.model_id
        assert a.metadata.author == "Jackie Garrahan"

    def test_bad_input(self, service):
        with pytest.raises(ValidationError, match="author"):
            Model.create_model(**{**FIELDS, "author": "a" * 500}, model_db_service=service)
        assert service.get_models() == []

    def test_uses_the_configured_context(self, lume_home):
        config.configure()
        model = Model.create_model(**FIELDS)
        assert Model(model_id=model.model_id).metadata == model.metadata
        assert "Jackie Garrahan" in repr(model)


class TestConstruct:
    def test_unknown_id(self, service):
        with pytest.raises(ModelNotFoundError):
            Model(model_id=404, model_db_service=service)

    def test_needs_an_identifier(self, service):
        with pytest.raises(ValueError, match="create_model"):
            Model(model_db_service=service)

    def test_from_deployment_id_loads_it(self, service):
        dep = make_deployment(service)
        model = Model(deployment_id=dep, model_db_service=service)
        assert model.deployment.deployment.deployment_id == dep
        assert model.model_id == model.deployment.deployment.model_id


class TestDeployments:
    def test_empty_then_oldest_first(self, service):
        model = Model.create_model(**FIELDS, model_db_service=service)
        assert model.deployments == []
        ids = [make_deployment(service, model.model_id) for _ in range(3)]
        assert [d.deployment_id for d in model.deployments] == ids

    def test_load_latest_and_by_id(self, service):
        model = Model.create_model(**FIELDS, model_db_service=service)
        first = make_deployment(service, model.model_id)
        latest = make_deployment(service, model.model_id)
        flow = make_flow(service, latest, make_project(service))
        loaded = model.load_deployment()
        assert loaded.deployment.deployment_id == latest and loaded.flow.flow_id == flow
        assert model.deployment is loaded
        assert model.load_deployment(first).flow is None

    def test_load_without_deployments_or_foreign_id(self, service):
        model = Model.create_model(**FIELDS, model_db_service=service)
        with pytest.raises(DeploymentNotRegisteredError, match="no deployments yet"):
            model.load_deployment()
        other = make_deployment(service)
        with pytest.raises(DeploymentNotRegisteredError, match=str(other)):
            model.load_deployment(other)

    def test_load_deployment_is_one_statement(self, service, model_db: ModelDB):
        from sqlalchemy import event

        model = Model.create_model(**FIELDS, model_db_service=service)
        make_flow(service, make_deployment(service, model.model_id), make_project(service))
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(model_db.engine, "before_cursor_execute", listener)
        try:
            model.load_deployment()
        finally:
            event.remove(model_db.engine, "before_cursor_execute", listener)
        assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1

    def test_set_live(self, service):
        model = Model.create_model(**FIELDS, model_db_service=service)
        a = make_deployment(service, model.model_id, is_live=True)
        b = make_deployment(service, model.model_id)
        model.set_live(b)
        assert model.live_deployment.deployment_id == b
        with pytest.raises(DeploymentNotRegisteredError):
            model.set_live(make_deployment(service))
        assert a
