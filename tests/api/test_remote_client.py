"""The remote client against a real server: same records, same exception classes, no database settings."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from factories import make_deployment, make_flow, make_model, make_project

from lume_services import config
from lume_services.cli.main import cli
from lume_services.client.settings import RegistrySettings
from lume_services.errors import (
    ConfigurationError,
    LiveDeploymentChangedError,
    ModelNotFoundError,
    RegistryUnreachableError,
    ScopeError,
    UnknownFilterError,
    ValidationError,
)
from lume_services.models import Model


@pytest.fixture
def remote(api, principals, lume_home, monkeypatch):
    """configure() from the environment as a client would: a URL and a token, no database variable."""

    def connect(who: str = "write"):
        monkeypatch.setenv("LUME_REGISTRY__URL", api.server.url)
        monkeypatch.setenv("LUME_REGISTRY__TOKEN", principals.tokens[who])
        return config.configure()

    return connect


class TestRemoteService:
    def test_the_model_api_works_unchanged(self, remote, service) -> None:
        context = remote("write")
        assert context.remote and "lume_" not in repr(context) and "lume_" not in repr(context.model_db_service())
        model = Model.create_model("Jackie Garrahan", "slac", "lcls", "cu_hxr", "remote model")
        assert model.model_id == service.get_model(description="remote model").model_id
        assert model.model_db_service.actor == "writer"
        first, second = make_deployment(service, model.model_id), make_deployment(service, model.model_id)
        make_flow(service, second, make_project(service))
        assert [d.deployment_id for d in model.deployments] == [first, second]
        model.set_live(first, expected_live=None, reason="remote")
        assert model.live_deployment.deployment_id == first
        with pytest.raises(LiveDeploymentChangedError) as caught:
            model.set_live(second, expected_live=None)
        assert (caught.value.expected, caught.value.actual) == (None, first)  # the attributes come along
        assert str(caught.value) == str(LiveDeploymentChangedError(model.model_id, None, first))
        loaded = model.load_deployment(second)
        assert loaded.flow is not None and loaded.deployment.deployment_id == second
        assert [i.set_by for i in model.live_history] == ["writer"]
        svc = model.model_db_service
        live = svc.get_live_deployments(facility="lcls", beampath="cu_hxr")
        assert live == service.get_live_deployments(facility="lcls", beampath="cu_hxr")
        assert [x.deployment.deployment_id for x in live] == [first]
        assert svc.list_beamlines(facility="lcls") == service.list_beamlines(facility="lcls") != []
        assert Model(model_id=model.model_id).metadata == service.get_model(model_id=model.model_id)

    def test_errors_are_the_librarys_classes(self, remote, service) -> None:
        remote("read")
        svc = config.get_context().model_db_service()
        with pytest.raises(ModelNotFoundError, match="model_id=424242"):
            Model(model_id=424242)
        with pytest.raises(ScopeError, match="'reader' has scope 'read'"):
            svc.store_project(project_name="p", description="d")
        with pytest.raises(UnknownFilterError):
            svc.get_models(colour="red")
        with pytest.raises(ConfigurationError, match="run it on the server host"):
            svc.export_records()
        with pytest.raises(ValidationError):
            svc.list_models(limit=0)
        with pytest.raises(ConfigurationError, match="this client has no database"):
            config.get_context().model_db()
        assert service.get_projects() == [p for p in service.get_projects() if p.project_name != "p"]

    def test_filters_tags_and_pages_match_the_local_service(self, remote, service) -> None:
        ids = [make_model(service, facility="facet" if i % 3 == 0 else "lcls") for i in range(7)]
        service.set_model_tags(ids[2], {"stage": "production"})
        remote("read")
        svc = config.get_context().model_db_service()
        for filters in ({}, {"facility": "facet"}, {"tags": {"stage": "production"}}):
            assert svc.get_models(**filters) == service.get_models(**filters)
        page = svc.list_models(limit=3)
        assert page == service.list_models(limit=3) and page.next_after == ids[2]
        assert svc.list_models_with_live(limit=2, after=ids[1]) == service.list_models_with_live(limit=2, after=ids[1])

    def test_an_unreachable_server_is_named_and_a_change_says_to_read_back(self, lume_home, monkeypatch) -> None:
        from apiserver import free_port

        monkeypatch.setenv("LUME_REGISTRY__URL", f"http://127.0.0.1:{free_port()}")
        monkeypatch.setenv("LUME_REGISTRY__TOKEN", "lume_secret-token-value")
        monkeypatch.setenv("LUME_REGISTRY__RETRIES", "1")
        svc = config.configure().model_db_service()
        with pytest.raises(RegistryUnreachableError, match="did not answer") as read:
            svc.get_model(model_id=1)
        assert not read.value.outcome_unknown and "lume_secret" not in str(read.value)
        with pytest.raises(RegistryUnreachableError, match="read it back") as change:
            svc.store_project(project_name="p", description="d")
        assert change.value.outcome_unknown

    def test_a_bad_url_is_refused_by_configure(self, lume_home, monkeypatch) -> None:
        monkeypatch.setenv("LUME_REGISTRY__URL", "registry.example.org")
        with pytest.raises(Exception, match="LUME_REGISTRY__URL"):
            config.configure()
        assert RegistrySettings(url=" https://r.example.org/ ").url == "https://r.example.org"


class TestRemoteCli:
    def test_commands_work_remotely(self, remote, service) -> None:
        model_id = make_model(service, description="cli remote")
        deployment_id = make_deployment(service, model_id)
        remote("admin")
        runner = CliRunner()
        listed = runner.invoke(cli, ["models", "list", "--json"])
        assert listed.exit_code == 0, listed.output
        assert [m["model"]["model_id"] for m in json.loads(listed.output)["items"]] == [model_id]
        live = runner.invoke(cli, ["deployments", "set-live", str(deployment_id), "--reason", "from the cli"])
        assert live.exit_code == 0, live.output
        assert service.get_live_history(model_id)[0].set_by == "admin"
        tokens = runner.invoke(cli, ["tokens", "create", "remote-made", "--scope", "read"])
        assert tokens.exit_code == 0 and tokens.output.strip().splitlines()[-1].startswith("lume_")
        assert "remote-made" in [t.name for t in service.list_tokens()]
        refused = runner.invoke(cli, ["db", "upgrade"])
        assert refused.exit_code == 1 and "run it on the server host" in refused.output
